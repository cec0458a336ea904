package pki

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"
)

// KeyPairReloader serves a certificate and key from disk and picks up new
// files without a restart: every handshake checks the files' modification
// time and size and re-reads them when they changed. If the new pair cannot
// be loaded (for example while a rotation has written the key but not yet
// the certificate) the previous pair keeps being served.
type KeyPairReloader struct {
	certPath, keyPath string
	logger            *slog.Logger

	mu       sync.Mutex
	cert     *tls.Certificate
	certStat fileStamp
	keyStat  fileStamp
}

type fileStamp struct {
	mod  time.Time
	size int64
	ino  uint64 // changes on every atomic rename
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	st := fileStamp{mod: fi.ModTime(), size: fi.Size()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = sys.Ino
	}
	return st, nil
}

// NewKeyPairReloader loads the pair once (an error if that fails). The key
// file may be the certificate file itself when it holds both (Octavia's
// server.pem). A nil logger discards logs.
func NewKeyPairReloader(certPath, keyPath string, logger *slog.Logger) (*KeyPairReloader, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &KeyPairReloader{certPath: certPath, keyPath: keyPath, logger: logger}
	if err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// CertPath and KeyPath are the watched files.
func (r *KeyPairReloader) CertPath() string { return r.certPath }

// KeyPath is the watched key file.
func (r *KeyPairReloader) KeyPath() string { return r.keyPath }

// Reload re-reads the files unconditionally.
func (r *KeyPairReloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reloadLocked()
}

func (r *KeyPairReloader) reloadLocked() error {
	cs, err := stampOf(r.certPath)
	if err != nil {
		return fmt.Errorf("pki: stat certificate: %w", err)
	}
	ks, err := stampOf(r.keyPath)
	if err != nil {
		return fmt.Errorf("pki: stat key: %w", err)
	}
	pair, err := tls.LoadX509KeyPair(r.certPath, r.keyPath)
	if err != nil {
		return fmt.Errorf("pki: load key pair: %w", err)
	}
	if pair.Leaf == nil {
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return fmt.Errorf("pki: parse leaf: %w", err)
		}
	}
	r.cert, r.certStat, r.keyStat = &pair, cs, ks
	return nil
}

// Current returns the certificate being served, reloading first if the
// files changed.
func (r *KeyPairReloader) Current() *tls.Certificate {
	r.mu.Lock()
	defer r.mu.Unlock()
	cs, err1 := stampOf(r.certPath)
	ks, err2 := stampOf(r.keyPath)
	if err1 == nil && err2 == nil && (cs != r.certStat || ks != r.keyStat) {
		if err := r.reloadLocked(); err != nil {
			r.logger.Warn("keeping previous certificate", "err", err)
		} else {
			r.logger.Info("reloaded certificate", "serial", r.cert.Leaf.SerialNumber.Text(16),
				"not_after", r.cert.Leaf.NotAfter)
		}
	}
	return r.cert
}

// GetCertificate is a tls.Config.GetCertificate callback.
func (r *KeyPairReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.Current(), nil
}

// GetClientCertificate is a tls.Config.GetClientCertificate callback, for
// clients whose certificate rotates.
func (r *KeyPairReloader) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return r.Current(), nil
}
