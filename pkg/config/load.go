package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ValidationError is the error Parse and Load return when the configuration
// has problems. Errors holds each problem with the path of its key, so that a
// caller such as `crproxy config validate` can print them one per line; use
// errors.As to get it.
type ValidationError struct {
	// File is the configuration file, empty when the configuration came
	// from Parse.
	File string
	// Errors are the problems, in a deterministic order.
	Errors field.ErrorList
}

// Error lists every problem, one per line, under a line that says where.
func (e *ValidationError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File + ": ")
	}
	fmt.Fprintf(&b, "invalid configuration, %d problem(s):", len(e.Errors))
	for _, fe := range e.Errors {
		b.WriteString("\n  " + fe.Error())
	}
	return b.String()
}

// Unwrap returns the individual problems, each a *field.Error.
func (e *ValidationError) Unwrap() []error {
	errs := make([]error, len(e.Errors))
	for i, fe := range e.Errors {
		errs[i] = fe
	}
	return errs
}

// Parse decodes a configuration strictly, defaults it and validates it. It
// reports all problems at once in a *ValidationError: unknown or mistyped
// fields in crproxy's sections, unknown top-level keys, and everything
// Validate finds. A document that is not YAML, has duplicate keys, or is not
// a mapping gives a plain error with the YAML parser's line numbers.
func Parse(data []byte) (*Config, error) {
	c, res, err := decode(data)
	if err != nil {
		return nil, err
	}
	errs := res.errs
	for _, fe := range c.Validate() {
		// An object that could not be decoded is left partly empty, so
		// problems in it, or about it from above (such as "no enabled
		// custom resource"), would mislead; they show once it decodes.
		if !related(fe.Field, res.typeErrs) {
			errs = append(errs, fe)
		}
	}
	if len(errs) > 0 {
		return nil, &ValidationError{Errors: errs}
	}
	c.Default()
	return c, nil
}

// Load reads and parses the configuration file at path. Kubeconfig paths
// relative to the file's directory are made absolute, so that the file means
// the same whatever the working directory of crproxy.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := Parse(data)
	if err != nil {
		if verr, ok := errors.AsType[*ValidationError](err); ok {
			verr.File = path
			return nil, verr
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	c.Client.Kubeconfig = resolve(dir, c.Client.Kubeconfig)
	for i := range c.Targets {
		c.Targets[i].Kubeconfig = resolve(dir, c.Targets[i].Kubeconfig)
	}
	if c.Platform != nil {
		c.Platform.Kubeconfig = resolve(dir, c.Platform.Kubeconfig)
	}
	return c, nil
}

// resolve makes a relative path absolute against dir; empty stays empty
// because an empty client kubeconfig means in-cluster.
func resolve(dir, path string) string {
	if path == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(dir, path)
}

// related reports whether the field path p is one of paths, or an ancestor
// or a descendant of one.
func related(p string, paths []string) bool {
	below := func(a, b string) bool {
		return a == b || strings.HasPrefix(a, b+".") || strings.HasPrefix(a, b+"[")
	}
	for _, q := range paths {
		if below(p, q) || below(q, p) {
			return true
		}
	}
	return false
}
