//go:build tools

// Package tools pins the kreuzwerker/docker Terraform provider so that
// scripts/build-provider.sh can build it from the Go module proxy.
package tools

import _ "github.com/terraform-providers/terraform-provider-docker"
