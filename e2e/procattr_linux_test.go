package e2e

import (
	"os/exec"
	"syscall"
)

// dieWithTest makes the kernel stop the child when the test binary dies
// (a killed `go test` must not leave an ostia behind).
func dieWithTest(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
