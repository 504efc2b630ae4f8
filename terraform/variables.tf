variable "project" {
  description = "Name prefix for every Docker object (network, containers, volumes) and the value of the project label."
  type        = string
  default     = "correnteza"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.project))
    error_message = "project must be 2-31 characters of lowercase letters, digits and dashes, starting with a letter."
  }
}

variable "docker_host" {
  description = "Docker engine endpoint."
  type        = string
  default     = "unix:///var/run/docker.sock"
}

variable "host_image" {
  description = "Host image (systemd, sshd, python3, JRE), built by scripts/host-image.sh, e.g. correnteza/host:<hash>."
  type        = string

  validation {
    condition     = length(var.host_image) > 0
    error_message = "host_image must name the image built by scripts/host-image.sh."
  }
}

variable "network_cidr" {
  description = "CIDR of the private network that every host sits on. Hosts get fixed addresses from it."
  type        = string
  default     = "10.77.0.0/24"

  validation {
    condition     = can(cidrhost(var.network_cidr, 0)) && can(regex("^[0-9.]+/[0-9]+$", var.network_cidr))
    error_message = "network_cidr must be an IPv4 CIDR such as 10.77.0.0/24."
  }

  validation {
    condition     = !can(cidrhost(var.network_cidr, 0)) || tonumber(split("/", var.network_cidr)[1]) <= 28
    error_message = "network_cidr must be a /28 or larger: smaller networks cannot hold the hosts."
  }
}

variable "group_counts" {
  description = "Hosts per Ansible group. Hosts are named <group>-<n> (underscores become dashes), e.g. kafka-1."
  type        = map(number)
  default = {
    zookeeper    = 3
    kafka        = 3
    cassandra    = 3
    spark_master = 1
    spark_worker = 2
    postgres     = 1
    airflow      = 1
    source       = 1
    registry     = 1
    objectstore  = 1
    monitor      = 1
  }

  validation {
    condition = alltrue([for g in keys(var.group_counts) : contains(
      ["zookeeper", "kafka", "cassandra", "spark_master", "spark_worker", "postgres", "airflow", "source", "registry", "objectstore", "monitor"], g
    )])
    error_message = "group_counts has an unknown group name; known groups: zookeeper, kafka, cassandra, spark_master, spark_worker, postgres, airflow, source, registry, objectstore, monitor."
  }

  validation {
    condition     = alltrue([for g, n in var.group_counts : n >= 0 && n <= 16 && floor(n) == n])
    error_message = "group_counts: each count must be a whole number from 0 to 16."
  }
}

variable "colocated_groups" {
  description = "Extra groups carried by a host, for co-location: { \"spark-master-1\" = [\"airflow\"] } puts Airflow on the Spark master. A group with count 0 may be served this way."
  type        = map(list(string))
  default     = {}

  validation {
    condition = alltrue(flatten([for h, gs in var.colocated_groups : [for g in gs : contains(
      ["zookeeper", "kafka", "cassandra", "spark_master", "spark_worker", "postgres", "airflow", "source", "registry", "objectstore", "monitor"], g
    )]]))
    error_message = "colocated_groups names an unknown group; known groups: zookeeper, kafka, cassandra, spark_master, spark_worker, postgres, airflow, source, registry, objectstore, monitor."
  }
}

variable "required_groups" {
  description = "Groups that must have at least one host (directly or through colocated_groups)."
  type        = list(string)
  default     = ["zookeeper", "kafka", "cassandra", "spark_master", "spark_worker", "postgres", "airflow", "source", "registry", "objectstore", "monitor"]
}

variable "group_memory_mb" {
  description = "Memory limit per host of each group, in MiB. Sized so that the default topology fits a 24 GiB machine."
  type        = map(number)
  default = {
    zookeeper    = 512
    kafka        = 1152
    cassandra    = 2304
    spark_master = 2048
    spark_worker = 2048
    postgres     = 1024
    airflow      = 3072
    source       = 384
    registry     = 768
    objectstore  = 512
    monitor      = 768
  }

  validation {
    condition     = alltrue([for g, m in var.group_memory_mb : m >= 256 && m <= 16384])
    error_message = "group_memory_mb: each limit must be between 256 and 16384 MiB."
  }
}

variable "published_ports" {
  description = "UIs published on the control node's 127.0.0.1 only: host name -> list of { port, external }, where port names a listener port of the contract (ansible/group_vars/all/contract.yml, correnteza_port_<port>)."
  type = map(list(object({
    port     = string
    external = number
  })))
  default = {
    "airflow-1"      = [{ port = "airflow_api", external = 8080 }]
    "spark-master-1" = [{ port = "spark_master_ui", external = 8081 }, { port = "spark_driver_ui", external = 4040 }]
  }

  validation {
    condition     = alltrue(flatten([for h, ps in var.published_ports : [for p in ps : can(regex("^[a-z][a-z0-9_]*$", p.port)) && p.external > 1024 && p.external < 65536]]))
    error_message = "published_ports: port must name a contract port (e.g. airflow_api) and external ports must be 1025-65535."
  }
}

variable "ssh_public_key" {
  description = "Public key installed for the deploy user on every host (the deployment key from scripts/ssh-key.sh)."
  type        = string

  validation {
    condition     = can(regex("^ssh-(ed25519|rsa) ", var.ssh_public_key))
    error_message = "ssh_public_key must be an OpenSSH public key (ssh-ed25519 or ssh-rsa)."
  }
}

variable "ssh_private_key_file" {
  description = "Path of the deployment's private key, written into the inventory for Ansible and testinfra."
  type        = string
  default     = "../.state/ssh/id_ed25519"
}

variable "deploy_user" {
  description = "The user Ansible logs in as (passwordless sudo, baked into the host image)."
  type        = string
  default     = "deploy"
}

variable "first_hostnum" {
  description = "Host number (in network_cidr) of the first host; lower numbers are left to the gateway."
  type        = number
  default     = 10

  validation {
    condition     = var.first_hostnum >= 2
    error_message = "first_hostnum must be 2 or more: .1 is the gateway."
  }
}
