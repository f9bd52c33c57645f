package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaychain/relaychain/internal/proctest"
)

// toxiproxyPkg is what the suite installs when toxiproxy is absent.
const toxiproxyPkg = "github.com/Shopify/toxiproxy/v2/cmd/server@v2.12.0"

// toxiproxy is a running toxiproxy server and its HTTP API.
type toxiproxy struct {
	url  string
	http *http.Client
}

var tox struct {
	once sync.Once
	srv  *toxiproxy
	cmd  *exec.Cmd
	done chan struct{}
	dir  string
	skip string // why the tests that need toxiproxy skip
	err  error  // toxiproxy was found but did not start
}

// toxi returns the shared toxiproxy server, starting it on first use. It
// skips the test when toxiproxy can be neither found nor installed.
func toxi(t testing.TB) *toxiproxy {
	t.Helper()
	binaries(t)
	tox.once.Do(startToxiproxy)
	if tox.skip != "" {
		t.Skip(tox.skip)
	}
	if tox.err != nil {
		t.Fatal(tox.err)
	}
	return tox.srv
}

func startToxiproxy() {
	bin, why := findToxiproxy()
	if bin == "" {
		tox.skip = "toxiproxy cannot be had: " + why
		return
	}
	var err error
	if tox.dir, err = os.MkdirTemp("", "relaychain-faults-toxiproxy-"); err != nil {
		tox.err = err
		return
	}
	for attempt := 0; attempt < 3; attempt++ {
		if err = runToxiproxy(bin); err == nil {
			return
		}
	}
	tox.err = fmt.Errorf("start toxiproxy %s: %w", bin, err)
}

// runToxiproxy starts bin on a free loopback port and waits for its API.
func runToxiproxy(bin string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(tox.dir, fmt.Sprintf("toxiproxy-%d.log", port)))
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "-host", "127.0.0.1", "-port", fmt.Sprint(port))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	srv := &toxiproxy{
		url: fmt.Sprintf("http://127.0.0.1:%d", port),
		// No keep-alive: no idle connection (and its goroutines) outlives
		// a call, which keeps the in-process goroutine counts exact.
		http: &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
	}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			b, _ := os.ReadFile(logf.Name())
			return fmt.Errorf("toxiproxy exited: %s", tail(string(b), 2000))
		case <-time.After(50 * time.Millisecond):
		}
		if err := srv.call(http.MethodGet, "/version", nil, nil); err == nil {
			tox.srv, tox.cmd, tox.done = srv, cmd, done
			return nil
		}
	}
	cmd.Process.Kill()
	<-done
	return fmt.Errorf("toxiproxy API did not answer on port %d within 15s", port)
}

func stopToxiproxy() {
	if tox.cmd != nil {
		tox.cmd.Process.Kill()
		<-tox.done
	}
	if tox.dir != "" {
		os.RemoveAll(tox.dir)
	}
}

// findToxiproxy looks for the toxiproxy server and installs it with go
// install when it is nowhere. It returns "" and the reason when it cannot.
func findToxiproxy() (string, string) {
	if p, err := exec.LookPath("toxiproxy-server"); err == nil {
		return p, ""
	}
	look := func() string {
		for _, d := range goBinDirs() {
			if p := filepath.Join(d, "server"); isToxiproxy(p) {
				return p
			}
		}
		if p, err := exec.LookPath("server"); err == nil && isToxiproxy(p) {
			return p
		}
		return ""
	}
	if p := look(); p != "" {
		return p, ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "install", toxiproxyPkg)
	cmd.Dir = os.TempDir() // outside the module: go install pkg@version ignores it anyway
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Sprintf("not on PATH (toxiproxy-server), not in GOBIN or GOPATH/bin (server), and `go install %s` failed: %v\n%s",
			toxiproxyPkg, err, tail(string(out), 1500))
	}
	if p := look(); p != "" {
		return p, ""
	}
	return "", fmt.Sprintf("`go install %s` succeeded but no toxiproxy server binary is in %v", toxiproxyPkg, goBinDirs())
}

// goBinDirs is where go install puts binaries: GOBIN, else GOPATH/bin.
func goBinDirs() []string {
	out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output()
	if err != nil {
		return nil
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	var dirs []string
	if len(lines) > 0 && lines[0] != "" {
		dirs = append(dirs, lines[0])
	}
	if len(lines) > 1 {
		for _, p := range filepath.SplitList(lines[1]) {
			if p != "" {
				dirs = append(dirs, filepath.Join(p, "bin"))
			}
		}
	}
	return dirs
}

// isToxiproxy reports whether bin is a toxiproxy server (the name "server"
// alone proves nothing).
func isToxiproxy(bin string) bool {
	if fi, err := os.Stat(bin); err != nil || fi.IsDir() {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-version").CombinedOutput()
	return err == nil && strings.Contains(string(out), "toxiproxy")
}

// call sends one API request with a JSON body (if in is not nil) and
// decodes a JSON answer into out (if not nil).
func (tp *toxiproxy) call(method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, tp.url+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "relaychain-faults") // toxiproxy refuses browsers
	resp, err := tp.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("toxiproxy %s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// proxy is one toxiproxy proxy: Listen forwards to Upstream.
type proxy struct {
	tp       *toxiproxy
	Name     string `json:"name"`
	Listen   string `json:"listen"`
	Upstream string `json:"upstream"`
	Enabled  bool   `json:"enabled"`
}

var proxySeq atomic.Int64

// newProxy creates a proxy on a free loopback port in front of upstream,
// deleted when the test ends.
func (tp *toxiproxy) newProxy(t testing.TB, upstream string) *proxy {
	t.Helper()
	name := fmt.Sprintf("p%d-%d", os.Getpid(), proxySeq.Add(1))
	p := &proxy{tp: tp}
	in := map[string]any{"name": name, "listen": "127.0.0.1:0", "upstream": upstream, "enabled": true}
	if err := tp.call(http.MethodPost, "/proxies", in, p); err != nil {
		t.Fatalf("create proxy to %s: %v", upstream, err)
	}
	if _, _, err := net.SplitHostPort(p.Listen); err != nil || strings.HasSuffix(p.Listen, ":0") {
		t.Fatalf("proxy %s listens on %q", name, p.Listen)
	}
	t.Cleanup(func() { tp.call(http.MethodDelete, "/proxies/"+name, nil, nil) })
	return p
}

// toxic is a toxic to add: Type is latency, bandwidth, reset_peer,
// limit_data, timeout, slow_close...; Stream is "downstream" (from the
// upstream node towards the dialer) or "upstream".
type toxic struct {
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Stream     string         `json:"stream"`
	Toxicity   float64        `json:"toxicity"`
	Attributes map[string]any `json:"attributes"`
}

// add adds a toxic to p and returns its name.
func (p *proxy) add(t testing.TB, typ, stream string, attrs map[string]any) string {
	t.Helper()
	x := toxic{Name: fmt.Sprintf("%s_%s_%d", typ, stream, proxySeq.Add(1)), Type: typ, Stream: stream, Toxicity: 1, Attributes: attrs}
	if err := p.tp.call(http.MethodPost, "/proxies/"+p.Name+"/toxics", x, nil); err != nil {
		t.Fatalf("add %s toxic to %s: %v", typ, p.Name, err)
	}
	return x.Name
}

// both adds a toxic to both directions of p.
func (p *proxy) both(t testing.TB, typ string, attrs map[string]any) {
	t.Helper()
	p.add(t, typ, "downstream", attrs)
	p.add(t, typ, "upstream", attrs)
}

// clearAll removes every toxic of the proxies and enables them. Removing
// a bandwidth toxic from a link whose reader is gone takes toxiproxy 5s
// (it tries not to drop the chunk it holds), so the removals run at once.
func clearAll(t testing.TB, ps []*proxy) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for _, p := range ps {
		var list []toxic
		if err := p.tp.call(http.MethodGet, "/proxies/"+p.Name+"/toxics", nil, &list); err != nil {
			t.Fatalf("list toxics of %s: %v", p.Name, err)
		}
		for _, x := range list {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := p.tp.call(http.MethodDelete, "/proxies/"+p.Name+"/toxics/"+x.Name, nil, nil); err != nil {
					select {
					case errs <- fmt.Errorf("remove toxic %s: %w", x.Name, err):
					default:
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, p := range ps {
		if !p.Enabled {
			p.setEnabled(t, true)
		}
	}
}

// setEnabled turns p on or off; off, its port refuses connections.
func (p *proxy) setEnabled(t testing.TB, on bool) {
	t.Helper()
	if err := p.tp.call(http.MethodPatch, "/proxies/"+p.Name, map[string]any{"enabled": on}, nil); err != nil {
		t.Fatalf("set %s enabled=%t: %v", p.Name, on, err)
	}
	p.Enabled = on
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	addr, err := proctest.FreeAddr()
	if err != nil {
		return 0, err
	}
	return addr.Port, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
