package localcluster

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// CrproxyOptions configures a crproxy process.
type CrproxyOptions struct {
	// BinDir holds the crproxy binary (`make build`).
	BinDir string
	// Dir is the process's folder: its data folder and log go there.
	Dir string
	// ConfigPath is the configuration file.
	ConfigPath string
	// ServiceName names the Service its APIServices point at.
	ServiceName string
	// ExtraArgs are appended to `crproxy serve`'s flags.
	ExtraArgs []string
}

// Crproxy is `crproxy serve` as a separate process, so a test can kill it
// as a crash would (SIGKILL) and start it again on the same data and port.
type Crproxy struct {
	// Port is the HTTPS port it listens on, kept across restarts.
	Port int
	// DataDir is its data folder, kept across restarts.
	DataDir string
	// LogPath is its log (appended to by every run).
	LogPath string

	proc *process
}

// NewCrproxy prepares a crproxy process on a free port; Start runs it.
func NewCrproxy(o CrproxyOptions) (*Crproxy, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	c := &Crproxy{Port: port, DataDir: filepath.Join(o.Dir, "data"), LogPath: filepath.Join(o.Dir, "crproxy.log")}
	args := []string{"serve",
		"--config=" + o.ConfigPath,
		"--data-dir=" + c.DataDir,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--service-name=" + o.ServiceName,
	}
	c.proc = &process{name: "crproxy", path: filepath.Join(o.BinDir, "crproxy"), args: append(args, o.ExtraArgs...), logPath: c.LogPath}
	return c, nil
}

// Start runs crproxy and waits until its /readyz answers 200.
func (c *Crproxy) Start(ctx context.Context) error {
	if err := c.proc.start(); err != nil {
		return err
	}
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	url := fmt.Sprintf("https://127.0.0.1:%d/readyz", c.Port)
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("crproxy not ready: %w (last: %v)\n%s", ctx.Err(), err, LogTail(c.LogPath, 20))
		case <-c.proc.done():
			return fmt.Errorf("crproxy exited: %v\n%s", c.proc.exitErr(), LogTail(c.LogPath, 20))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop ends crproxy with SIGTERM (SIGKILL after 10 s).
func (c *Crproxy) Stop() { c.proc.stop(10 * time.Second) }

// Kill ends crproxy at once with SIGKILL, as a crash would.
func (c *Crproxy) Kill() { c.proc.kill() }

// DumpGoroutines makes the running crproxy print every goroutine's stack
// into its log (SIGQUIT: the Go runtime dumps and exits), for a test that
// found it stuck.
func (c *Crproxy) DumpGoroutines() {
	c.proc.signal(syscall.SIGQUIT)
	<-c.proc.done()
}

// PID is the running process's id, 0 when it is not running.
func (c *Crproxy) PID() int { return c.proc.pid() }
