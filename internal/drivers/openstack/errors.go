package openstack

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/ostia/ostia/sagas/ports"
	"github.com/ostia/ostia/sagas/saga"
)

// cleanupTimeout bounds a roll-back call.
const cleanupTimeout = 30 * time.Second

// statusOf returns the HTTP status of a gophercloud error (0: none).
func statusOf(err error) int {
	var code gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &code) {
		return code.Actual
	}
	return 0
}

func isStatus(err error, status int) bool { return statusOf(err) == status }

// classify wraps err with what was being done and sorts it into the saga
// error kinds:
//
//   - 404                                  -> ports.ErrNotFound
//   - 408, 409, 429, 5xx, 401 (after the client's own re-authentication),
//     network errors, timeouts, an ended context -> saga.ErrTransient
//   - other 4xx (400, 403, 413, ...), invalid input -> saga.ErrPermanent
//
// Anything else (say, an unreadable response) is transient.
func classify(what string, err error) error {
	if err == nil {
		return nil
	}
	e := fmt.Errorf("openstack: %s: %w", what, err)
	if status := statusOf(err); status != 0 {
		switch {
		case status == http.StatusNotFound:
			return fmt.Errorf("%w: %w", ports.ErrNotFound, e)
		case status == http.StatusConflict, status == http.StatusRequestTimeout, status == http.StatusTooManyRequests,
			status == http.StatusUnauthorized, status >= 500:
			return saga.Transient(e)
		default:
			return saga.Permanent(e)
		}
	}
	var (
		missing gophercloud.ErrMissingInput
		invalid gophercloud.ErrInvalidInput
		noSvc   gophercloud.ErrServiceNotFound
		noEP    gophercloud.ErrEndpointNotFound
		refusal *inputError
	)
	if errors.As(err, &refusal) || errors.As(err, &missing) || errors.As(err, &invalid) ||
		errors.As(err, &noSvc) || errors.As(err, &noEP) {
		return saga.Permanent(e)
	}
	// An ended context, gophercloud.ErrTimeOut, a net.Error (refused,
	// reset, DNS) and anything unexpected: worth another try.
	return saga.Transient(e)
}

// permanentNotFound is for a missing resource the call cannot do without
// (plugging a port into a server that does not exist): it stays
// errors.Is(ports.ErrNotFound) but retrying will not help.
func permanentNotFound(what string, err error) error {
	c := classify(what, err)
	if errors.Is(c, ports.ErrNotFound) {
		return saga.Permanent(c)
	}
	return c
}

// inputError is a request this driver refuses to send.
type inputError struct{ msg string }

func (e *inputError) Error() string { return e.msg }

func badInput(format string, args ...any) error {
	return saga.Permanent(&inputError{msg: "openstack: " + fmt.Sprintf(format, args...)})
}
