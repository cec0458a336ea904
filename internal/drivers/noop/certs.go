package noop

import (
	"bytes"
	"context"
	"fmt"
	"sync"

	"github.com/ostia/ostia/sagas/ports"
	"github.com/ostia/ostia/sagas/saga"
)

// CertStore is an in-memory cert manager (ports.CertManager) that tests
// fill with PutTLSBundle and PutSecret. It stores what it is given without
// checking it. Safe for concurrent use.
type CertStore struct {
	mu      sync.Mutex
	bundles map[string]ports.TLSBundle
	secrets map[string][]byte
	fetches map[string]int
}

var _ ports.CertManager = (*CertStore)(nil)

// NewCertStore returns an empty store.
func NewCertStore() *CertStore {
	return &CertStore{bundles: map[string]ports.TLSBundle{}, secrets: map[string][]byte{}, fetches: map[string]int{}}
}

func cloneBundle(b ports.TLSBundle) ports.TLSBundle {
	return ports.TLSBundle{Certificate: bytes.Clone(b.Certificate), Intermediates: bytes.Clone(b.Intermediates),
		PrivateKey: bytes.Clone(b.PrivateKey)}
}

// PutTLSBundle stores a certificate container under ref.
func (s *CertStore) PutTLSBundle(ref string, b ports.TLSBundle) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bundles[ref] = cloneBundle(b)
}

// PutSecret stores a CA or CRL secret under ref.
func (s *CertStore) PutSecret(ref string, pem []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secrets[ref] = bytes.Clone(pem)
}

// Delete removes ref (bundle and secret).
func (s *CertStore) Delete(ref string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.bundles, ref)
	delete(s.secrets, ref)
}

// Fetches returns how often ref was asked for.
func (s *CertStore) Fetches(ref string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetches[ref]
}

// GetTLSBundle implements ports.CertManager.
func (s *CertStore) GetTLSBundle(ctx context.Context, ref string) (ports.TLSBundle, error) {
	if err := ctx.Err(); err != nil {
		return ports.TLSBundle{}, saga.Transient(fmt.Errorf("noop cert store: %w", err))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fetches[ref]++
	b, ok := s.bundles[ref]
	if !ok {
		return ports.TLSBundle{}, fmt.Errorf("noop cert store: certificate %s: %w", ref, ports.ErrNotFound)
	}
	return cloneBundle(b), nil
}

// GetSecret implements ports.CertManager.
func (s *CertStore) GetSecret(ctx context.Context, ref string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, saga.Transient(fmt.Errorf("noop cert store: %w", err))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fetches[ref]++
	b, ok := s.secrets[ref]
	if !ok {
		return nil, fmt.Errorf("noop cert store: secret %s: %w", ref, ports.ErrNotFound)
	}
	return bytes.Clone(b), nil
}
