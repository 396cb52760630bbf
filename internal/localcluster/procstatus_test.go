package localcluster

import (
	"os"
	"testing"
)

func TestReadProcStatus(t *testing.T) {
	s, err := ReadProcStatus(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSSKiB <= 0 || s.PeakRSSKiB < s.RSSKiB || s.Threads <= 0 {
		t.Errorf("implausible status of this test process: %+v", s)
	}
	if _, err := ReadProcStatus(-1); err == nil {
		t.Error("no error for a process that cannot exist")
	}
}
