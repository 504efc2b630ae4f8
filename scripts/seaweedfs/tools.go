//go:build tools

// Package tools records the one package scripts/build-seaweedfs.sh builds, so
// that `go mod tidy` keeps go.mod and go.sum complete for it. The build tag
// keeps the file out of every build.
package tools

import _ "github.com/seaweedfs/seaweedfs/weed"
