// Package version tells which crproxy this is. The Makefile stamps Version at
// link time; a plain `go build` reports the module version or "devel".
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is set with -ldflags "-X github.com/crproxy/crproxy/internal/version.Version=...".
var Version = ""

// Info describes the running binary.
type Info struct {
	Version   string `json:"version"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// Get returns the running binary's version information.
func Get() Info {
	v := Version
	if v == "" {
		v = "devel"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
	}
	return Info{Version: v, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
}

// String is the one-line form `crproxy version` prints.
func (i Info) String() string {
	return fmt.Sprintf("crproxy %s (%s, %s)", i.Version, i.GoVersion, i.Platform)
}
