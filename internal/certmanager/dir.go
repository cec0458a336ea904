package certmanager

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"

	"github.com/ostia/ostia/sagas/ports"
	"github.com/ostia/ostia/sagas/saga"
)

// Dir is the local cert manager (Octavia's local_cert_manager): every
// reference is an id naming files in one directory ([certificates]
// storage_path):
//
//	<id>.crt   the certificate (PEM; more certificates after it are
//	           intermediates), or for a CA/CRL reference the secret itself
//	<id>.key   the private key (PEM)
//	<id>.int   intermediates (PEM, optional)
//	<id>.pass  the private key passphrase (optional; one trailing newline
//	           is ignored)
//	<id>.pem   a CA/CRL secret, read when there is no <id>.crt
//
// A reference may also be written "local://<id>". Ids are letters,
// digits, '_', '-' and '.', not starting with '.'. Dir reads the files on
// every call, so files can be replaced while Ostia runs.
type Dir struct {
	path string
}

var _ ports.CertManager = (*Dir)(nil)

// NewDir returns a cert manager reading path. A directory that does not
// exist (yet) holds no certificates: every reference is not found.
func NewDir(path string) (*Dir, error) {
	if path == "" {
		return nil, errors.New("certmanager: storage path is empty")
	}
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("certmanager: storage path: %w", err)
	case !st.IsDir():
		return nil, fmt.Errorf("certmanager: storage path %s is not a directory", path)
	}
	return &Dir{path: path}, nil
}

// Path is the storage directory.
func (d *Dir) Path() string { return d.path }

var idPattern = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,254}$`)

func (d *Dir) base(ref string) (string, error) {
	id, _ := bytes.CutPrefix([]byte(ref), []byte("local://"))
	if !idPattern.Match(id) {
		return "", saga.Permanent(fmt.Errorf("certmanager: invalid local certificate reference %q", ref))
	}
	return filepath.Join(d.path, string(id)), nil
}

// read returns a file; a missing file wraps ports.ErrNotFound unless
// optional, when it returns nil.
func read(ctx context.Context, path string, optional bool) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, saga.Transient(err)
	}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && optional:
		return nil, nil
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("certmanager: %s: %w", filepath.Base(path), ports.ErrNotFound)
	case err != nil:
		return nil, saga.Transient(fmt.Errorf("certmanager: %w", err))
	}
	return b, nil
}

// GetTLSBundle implements ports.CertManager.
func (d *Dir) GetTLSBundle(ctx context.Context, ref string) (ports.TLSBundle, error) {
	base, err := d.base(ref)
	if err != nil {
		return ports.TLSBundle{}, err
	}
	cert, err := read(ctx, base+".crt", false)
	if err != nil {
		return ports.TLSBundle{}, fmt.Errorf("certificate %s: %w", ref, err)
	}
	key, err := read(ctx, base+".key", false)
	if err != nil {
		return ports.TLSBundle{}, fmt.Errorf("certificate %s: %w", ref, err)
	}
	inter, err := read(ctx, base+".int", true)
	if err != nil {
		return ports.TLSBundle{}, fmt.Errorf("certificate %s: %w", ref, err)
	}
	pass, err := read(ctx, base+".pass", true)
	if err != nil {
		return ports.TLSBundle{}, fmt.Errorf("certificate %s: %w", ref, err)
	}
	pass = bytes.TrimSuffix(bytes.TrimSuffix(pass, []byte("\n")), []byte("\r"))
	b, err := Bundle(cert, key, inter, pass)
	if err != nil {
		return ports.TLSBundle{}, fmt.Errorf("certificate %s: %w", ref, err)
	}
	return b, nil
}

// GetSecret implements ports.CertManager: <id>.crt, else <id>.pem.
func (d *Dir) GetSecret(ctx context.Context, ref string) ([]byte, error) {
	base, err := d.base(ref)
	if err != nil {
		return nil, err
	}
	data, err := read(ctx, base+".crt", true)
	if err == nil && data == nil {
		data, err = read(ctx, base+".pem", false)
	}
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w", ref, err)
	}
	out, err := CheckSecret(data)
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w", ref, err)
	}
	return out, nil
}
