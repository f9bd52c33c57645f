package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// nginx as a peer: a static origin (sendfile on) and chains of reverse
// proxies in front of it, each an nginx master with its own prefix and
// config under the work directory (never the system's nginx service).
//
// The proxies keep upstream connections alive (HTTP/1.1, keepalive pool),
// and pass the body through as it comes (proxy_buffering off, with a 256 KiB
// buffer): with buffering on, a 1 GiB body would spill to temporary files.

// nginxEnv holds the origin and the proxy chains.
type nginxEnv struct {
	origin   string         // host:port of the static origin
	chains   map[int]string // proxies -> first hop
	goChains map[int]string // Go TCP relays in front of origin -> first hop
}

const nginxCommon = `worker_processes auto;
worker_rlimit_nofile 65536;
%s
pid {{DIR}}/nginx.pid;
error_log {{DIR}}/error.log warn;
events { worker_connections 16384; }
http {
    access_log off;
    default_type application/octet-stream;
    client_body_temp_path {{DIR}}/tmp/body;
    proxy_temp_path {{DIR}}/tmp/proxy;
    fastcgi_temp_path {{DIR}}/tmp/fastcgi;
    uwsgi_temp_path {{DIR}}/tmp/uwsgi;
    scgi_temp_path {{DIR}}/tmp/scgi;
    keepalive_timeout 300s;
    keepalive_requests 100000000;
    tcp_nodelay on;
%s
}
`

const nginxOriginServer = `    sendfile on;
    tcp_nopush on;
    open_file_cache max=64 inactive=60s;
    open_file_cache_valid 60s;
    server {
        listen 127.0.0.1:{{PORT}};
        root {{ROOT}};
        location / { }
    }`

const nginxProxyServer = `    upstream next {
        server {{NEXT}};
        keepalive 1024;
        keepalive_requests 100000000;
        keepalive_timeout 300s;
    }
    server {
        listen 127.0.0.1:{{PORT}};
        location / {
            proxy_pass http://next;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_buffer_size 256k;
            proxy_buffers 4 256k;
            proxy_busy_buffers_size 256k;
        }
    }`

// startNginx writes a config for one nginx and starts it; server is
// nginxOriginServer or nginxProxyServer with its placeholders.
func (e *env) startNginx(ctx context.Context, name, server string, vars map[string]string) (string, error) {
	dir := filepath.Join(e.dir, "nginx-"+name)
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		return "", err
	}
	port, err := freePort()
	if err != nil {
		return "", err
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;" // the work directory is root's
	}
	conf := fmt.Sprintf(nginxCommon, user, server)
	vars["DIR"], vars["PORT"] = dir, strconv.Itoa(port)
	for k, v := range vars {
		conf = strings.ReplaceAll(conf, "{{"+k+"}}", v)
	}
	cf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		return "", err
	}
	argv := []string{e.nginx, "-p", dir, "-c", cf, "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;"}
	p, err := e.ps.start("nginx-"+name, argv, nil)
	if err != nil {
		return "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	if err := waitDial(ctx, p, addr, startTimeout); err != nil {
		return "", fmt.Errorf("%w\n%s", err, readTail(filepath.Join(dir, "error.log")))
	}
	return addr, nil
}

func readTail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// nginxChain returns the first hop of a chain of n nginx proxies in front
// of the nginx origin (the origin itself for n = 0).
func (e *env) nginxChain(ctx context.Context, n int) (string, error) {
	if e.ngx == nil {
		addr, err := e.startNginx(ctx, "origin", nginxOriginServer, map[string]string{"ROOT": e.root})
		if err != nil {
			return "", err
		}
		e.ngx = &nginxEnv{origin: addr, chains: map[int]string{}, goChains: map[int]string{}}
	}
	if a, ok := e.ngx.chains[n]; ok {
		return a, nil
	}
	next := e.ngx.origin
	for i := n; i >= 1; i-- {
		addr, err := e.startNginx(ctx, fmt.Sprintf("proxy%d-of-%d", i, n), nginxProxyServer, map[string]string{"NEXT": next})
		if err != nil {
			return "", err
		}
		next = addr
	}
	e.ngx.chains[n] = next
	return next, nil
}

// goHTTPURL is the URL of name through a chain of n baseline Go TCP
// relays in front of the nginx origin: what a bare Go relay adds to an
// HTTP GET on warm (keep-alive) connections.
func (e *env) goHTTPURL(ctx context.Context, n int, name string) (string, error) {
	if _, err := e.nginxChain(ctx, 0); err != nil {
		return "", err
	}
	first, ok := e.ngx.goChains[n]
	if !ok {
		var err error
		if first, _, err = e.goRelays(ctx, n, e.ngx.origin, "go-http-relay"); err != nil {
			return "", err
		}
		e.ngx.goChains[n] = first
	}
	return "http://" + first + "/" + name, nil
}

// nginxURL is the URL of name through a chain of n nginx proxies.
func (e *env) nginxURL(ctx context.Context, n int, name string) (string, error) {
	first, err := e.nginxChain(ctx, n)
	if err != nil {
		return "", err
	}
	return "http://" + first + "/" + name, nil
}

// curlSpeed fetches url with curl into /dev/null and returns curl's
// average download speed in MB/s.
func curlSpeed(ctx context.Context, url string, size int64) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, bulkMeasureTime)
	defer cancel()
	cmd := exec.CommandContext(ctx, "curl", "-o", "/dev/null", "-s", "-S", "-f",
		"-w", "%{speed_download} %{size_download}", url)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("curl %s: %w: %s", url, err, errb.String())
	}
	f := strings.Fields(out.String())
	if len(f) != 2 {
		return 0, fmt.Errorf("curl %s: output %q", url, out.String())
	}
	speed, err1 := strconv.ParseFloat(f[0], 64)
	got, err2 := strconv.ParseFloat(f[1], 64)
	if err1 != nil || err2 != nil || int64(got) != size {
		return 0, fmt.Errorf("curl %s: output %q, want %d bytes", url, out.String(), size)
	}
	return speed / 1e6, nil
}

// httpGetter returns a GET of url for the load driver: net/http with
// keepalive, at most conc connections.
func httpGetter(url string, size int64, conc int) (func(context.Context) error, func()) {
	tr := &http.Transport{
		MaxIdleConns:        conc + 16,
		MaxIdleConnsPerHost: conc + 16,
		IdleConnTimeout:     5 * time.Minute,
		DisableCompression:  true,
	}
	cl := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	buf := make(chan []byte, conc+1)
	get := func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := cl.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var b []byte
		select {
		case b = <-buf:
		default:
			b = make([]byte, 64<<10)
		}
		defer func() { buf <- b }()
		var n int64
		for {
			k, err := resp.Body.Read(b)
			n += int64(k)
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
		}
		if resp.StatusCode != http.StatusOK || n != size {
			return fmt.Errorf("GET %s: %s, %d bytes, want %d", url, resp.Status, n, size)
		}
		return nil
	}
	return get, tr.CloseIdleConnections
}
