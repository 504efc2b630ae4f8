terraform {
  required_version = ">= 1.6"

  required_providers {
    docker = {
      source = "kreuzwerker/docker"
      # Built from the Go module proxy by scripts/build-provider.sh (see provider/go.mod).
      version = "4.6.0"
    }
  }
}

provider "docker" {
  host = var.docker_host
}
