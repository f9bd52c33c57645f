package faults

import (
	"os"
	"os/exec"
	"testing"
)

// TestDiskFull fetches files larger than the room the client has to write
// them: a 1 MiB tmpfs mounted by the test (as root), or a file size limit
// (ulimit -f 512: 512 KiB). The client exits non-zero, prints no success,
// and leaves neither the file nor a temporary file (a --resume download
// may keep its NAME.partial).
func TestDiskFull(t *testing.T) {
	t.Parallel()
	two := fileSpec{name: "two.bin", size: 2 << 20} // auto: the mux
	c := newChain(t, chainSpec{relays: 1, files: []fileSpec{two, bigFile}})
	t.Run("tmpfs", func(t *testing.T) {
		dir := tmpfs(t, "1m")
		for _, tc := range []struct {
			name   string
			resume bool
		}{{two.name, false}, {bigFile.name, false}, {bigFile.name, true}} {
			cmd := []string{"get", "-o", dir}
			if tc.resume {
				cmd = append(cmd, "--resume")
			}
			r := c.run(t, c.args(nil, append(cmd, tc.name)...)...)
			t.Logf("%s (resume %t): %s", tc.name, tc.resume, r.stderr.String())
			r.failed(t, `no space left on device`)
			checkOutDir(t, dir, nil, tc.resume)
			if tc.resume { // make room for the next case
				os.Remove(dir + "/" + tc.name + ".partial")
				os.Remove(dir + "/" + tc.name + ".partial.json")
			}
		}
	})
	t.Run("ulimit", func(t *testing.T) {
		if _, err := exec.LookPath("bash"); err != nil {
			t.Skip("no bash for ulimit -f")
		}
		for _, name := range []string{two.name, bigFile.name} {
			dir := t.TempDir()
			wrap := []string{"bash", "-c", `ulimit -f 512 && exec "$0" "$@"`}
			r := startClient(t, wrap, c.args(nil, "get", "-o", dir, name)...).wait(t, clientTimeout)
			t.Logf("%s: %s", name, r.stderr.String())
			r.failed(t, `file too large`)
			checkOutDir(t, dir, nil, false)
		}
	})
	c.after(t)
}

// tmpfs mounts a tmpfs of size on a new directory, unmounted when the test
// ends. It skips the test where it cannot.
func tmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("not root: cannot mount a small tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			exec.Command("umount", "-l", dir).Run()
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}
