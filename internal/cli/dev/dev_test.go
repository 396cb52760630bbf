package dev

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the writer goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The demo comes up, and the walkthrough it prints, run as printed, shows
// what the documentation says: each team sees only its own resource, the
// target sees both. Stopping removes the state folder.
func TestDevRunsTheWalkthroughAsPrinted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "state")
	out := &syncBuffer{}
	scripts := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, &Options{Dir: dir, Out: out, Ready: func(s string) { scripts <- s }})
	}()
	var script string
	select {
	case script = <-scripts:
	case err := <-done:
		t.Fatalf("crproxy dev ended before it was ready: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), script) {
		t.Fatalf("the walkthrough handed to Ready is not what was printed:\n%s", out.String())
	}
	for _, progress := range []string{"[1/5] starting etcd", "[2/5]", "[3/5]", "[4/5]", "[5/5]", "Ready in"} {
		if !strings.Contains(out.String(), progress) {
			t.Errorf("no %q in the output:\n%s", progress, out.String())
		}
	}
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script)
	transcript, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the walkthrough failed: %v\n%s", err, transcript)
	}
	// The platform's check answers yes for both teams; then the three get
	// commands print their tables in order: team-a's, team-b's, the
	// target's.
	text := string(transcript)
	if !strings.HasPrefix(text, "yes\nyes\n") {
		t.Errorf("the platform's check does not answer yes twice:\n%s", text)
	}
	tables := strings.Split(text, "NAME")
	if len(tables) != 4 {
		t.Fatalf("want three tables in the transcript:\n%s", text)
	}
	wantRows := []struct{ has, hasNot string }{{"team-a-resource", "team-b-resource"}, {"team-b-resource", "team-a-resource"}}
	for i, w := range wantRows {
		if !strings.Contains(tables[i+1], w.has) || strings.Contains(tables[i+1], w.hasNot) {
			t.Errorf("table %d:\n%s\nwant %s and not %s", i+1, tables[i+1], w.has, w.hasNot)
		}
	}
	if !strings.Contains(tables[3], "team-a-resource") || !strings.Contains(tables[3], "team-b-resource") {
		t.Errorf("the target's table:\n%s\nwant both resources", tables[3])
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("crproxy dev ended with %v", err)
	}
	if _, err := exec.Command("test", "-e", dir).CombinedOutput(); err == nil {
		t.Errorf("the state folder %s was not removed", dir)
	}
}
