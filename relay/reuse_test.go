package relay

import (
	"io"
	"testing"
	"time"

	"github.com/relaychain/relaychain/route"
)

// TestRawLinkReuse sends many GETs one after another on one raw link to a
// terminal, each request sent the moment the previous trailer arrived: a
// request must never lose a byte to the previous exchange.
func TestRawLinkReuse(t *testing.T) {
	t.Parallel()
	root, files := sharedFiles(t)
	cfg := terminalConfig(root)
	cfg.HeaderTimeout = time.Second
	term := startNode(t, cfg)
	f := files[sizeName(1)]
	c := dialPrefaced(t, term.Addr, "RLYC\x03R")
	req := requestFrame(t, term.Addr, f.Name)
	start := route.AppendStart(nil, 0)
	body := make([]byte, f.Size)
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; i < 300 && time.Now().Before(deadline); i++ {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(req); err != nil {
			t.Fatalf("request %d: write: %v", i, err)
		}
		resp, err := route.ReadResponse(c)
		if err != nil || resp.Status != route.StatusOK {
			t.Fatalf("request %d on a reused raw link: got %v %q, err %v; want ok", i, resp.Status, resp.Message, err)
		}
		if _, err := c.Write(start); err != nil {
			t.Fatalf("request %d: write START: %v", i, err)
		}
		if _, err := io.ReadFull(c, body); err != nil {
			t.Fatalf("request %d: read body: %v", i, err)
		}
		if tr, err := route.ReadTrailer(c); err != nil || tr.SHA256 != f.Sum {
			t.Fatalf("request %d: trailer %x, %v; want %x", i, tr.SHA256, err, f.Sum)
		}
	}
}
