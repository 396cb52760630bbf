package localcluster

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Etcd is one etcd member serving plain HTTP on loopback.
type Etcd struct {
	// ClientURL is where the apiservers reach it.
	ClientURL string
	// LogPath is the file etcd writes its log to.
	LogPath string

	proc *process
}

// startEtcd starts etcd with its data in dir. Without fsync: the data of a
// test environment is not worth the disk latency.
func startEtcd(ctx context.Context, binDir, dir string) (*Etcd, error) {
	path, err := requireBinary(binDir, "etcd")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	clientPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	peerPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	clientURL := "http://127.0.0.1:" + strconv.Itoa(clientPort)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	e := &Etcd{
		ClientURL: clientURL,
		LogPath:   filepath.Join(dir, "etcd.log"),
	}
	e.proc = &process{
		name:    "etcd",
		path:    path,
		logPath: e.LogPath,
		args: []string{
			"--name=default",
			"--data-dir=" + filepath.Join(dir, "data"),
			"--listen-client-urls=" + clientURL,
			"--advertise-client-urls=" + clientURL,
			"--listen-peer-urls=" + peerURL,
			"--initial-advertise-peer-urls=" + peerURL,
			"--initial-cluster=default=" + peerURL,
			"--unsafe-no-fsync",
			"--quota-backend-bytes=8589934592",
			"--log-level=warn",
		},
	}
	if err := e.proc.start(); err != nil {
		return nil, err
	}
	if err := e.waitHealthy(ctx, 30*time.Second); err != nil {
		e.Stop()
		return nil, err
	}
	return e, nil
}

func (e *Etcd) waitHealthy(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.ClientURL+"/health", nil)
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(string(body), `"health":"true"`) {
				return nil
			}
		}
		select {
		case <-e.proc.done():
			return fmt.Errorf("etcd exited before it was healthy (%v); log tail:\n%s", e.proc.exitErr(), LogTail(e.LogPath, 30))
		case <-ctx.Done():
			return fmt.Errorf("etcd not healthy after %s; log tail:\n%s", timeout, LogTail(e.LogPath, 30))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop ends etcd.
func (e *Etcd) Stop() {
	e.proc.stop(10 * time.Second)
}

// PID is etcd's process id, for memory measurements.
func (e *Etcd) PID() int { return e.proc.pid() }
