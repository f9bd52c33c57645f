package proctest

import (
	"net"
	"slices"
	"strings"
	"testing"
)

func TestLogBuf(t *testing.T) {
	b := NewLogBuf()
	b.Write([]byte("time=x level=INFO msg=\"starting\"\ntime=x level=INFO msg=\"listening on 127.0.0.1:7"))
	select {
	case <-b.Ready():
		t.Fatal("Ready closed before the line was complete")
	default:
	}
	b.Write([]byte("000\"\n"))
	select {
	case <-b.Ready():
	default:
		t.Fatal("Ready not closed after a whole \"listening on\" line")
	}
	if got := b.Addr(); got != "127.0.0.1:7000" {
		t.Errorf("Addr() = %q, want 127.0.0.1:7000", got)
	}
	b.Write([]byte(`{"msg":"listening on 10.0.0.1:1"}` + "\n"))
	if got := b.Addr(); got != "127.0.0.1:7000" {
		t.Errorf("Addr() after a second line = %q, want the first address", got)
	}
	if !strings.HasSuffix(b.String(), "10.0.0.1:1\"}\n") {
		t.Errorf("String() = %q, want everything written", b.String())
	}
}

func TestCleanEnv(t *testing.T) {
	t.Setenv("RELAYCHAIN_ROOT", "/nowhere")
	t.Setenv("PROCTEST_KEEP", "1")
	env := CleanEnv("RELAYCHAIN_LISTEN=127.0.0.1:0")
	if slices.Contains(env, "RELAYCHAIN_ROOT=/nowhere") || !slices.Contains(env, "PROCTEST_KEEP=1") {
		t.Errorf("CleanEnv kept a RELAYCHAIN_ variable or dropped another: %q", env)
	}
	if env[len(env)-1] != "RELAYCHAIN_LISTEN=127.0.0.1:0" {
		t.Errorf("CleanEnv: last entry %q, want the extra one", env[len(env)-1])
	}
}

func TestFreeAddr(t *testing.T) {
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	if !addr.IP.IsLoopback() || addr.Port == 0 {
		t.Fatalf("FreeAddr() = %v, want a loopback address with a port", addr)
	}
	if c, err := net.Dial("tcp", addr.String()); err == nil {
		c.Close()
		t.Errorf("something listens on %v", addr)
	}
}
