package localcluster

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
)

// BinDirEnv names the environment variable that overrides where the etcd,
// kube-apiserver and kubectl binaries are found.
const BinDirEnv = "CRPROXY_BIN_DIR"

// FindBinDir returns the folder holding the binaries `make tools` builds:
// $CRPROXY_BIN_DIR, or bin/ at the root of the crproxy module found by
// walking up from the working directory (go test runs in the package
// folder), or else the folder of the running executable when they are
// beside it (bin/crproxy run from elsewhere).
func FindBinDir() (string, error) {
	if dir := os.Getenv(BinDirEnv); dir != "" {
		return filepath.Abs(dir)
	}
	root, err := ModuleRoot()
	if err == nil {
		return filepath.Join(root, "bin"), nil
	}
	if exe, exeErr := os.Executable(); exeErr == nil {
		if _, statErr := os.Stat(filepath.Join(filepath.Dir(exe), "kube-apiserver")); statErr == nil {
			return filepath.Dir(exe), nil
		}
	}
	return "", err
}

// ModuleRoot walks up from the working directory to the folder whose go.mod
// declares the crproxy module.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(bytes.TrimSpace(data), []byte("module github.com/crproxy/crproxy\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no crproxy go.mod above the working directory; set %s to the folder with etcd and kube-apiserver", BinDirEnv)
		}
		dir = parent
	}
}

func requireBinary(binDir, name string) (string, error) {
	path := filepath.Join(binDir, name)
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("%s not found in %s: run `make tools`", name, binDir)
	}
	return path, nil
}

// FreePort returns a loopback TCP port that nothing listens on right now.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
