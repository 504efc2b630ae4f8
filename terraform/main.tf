locals {
  # The listener ports of the contract that Ansible deploys (defined once, there).
  contract       = yamldecode(file("${path.module}/../ansible/group_vars/all/contract.yml"))
  contract_ports = { for k, v in local.contract : trimprefix(k, "correnteza_port_") => v if startswith(k, "correnteza_port_") }
  published = {
    for h, ps in var.published_ports : h => [
      for p in ps : { port = p.port, internal = lookup(local.contract_ports, p.port, 0), external = p.external }
    ]
  }

  # Known groups, in address order: each group owns a block of 16 host numbers,
  # so adding a host to one group never moves the addresses of another.
  groups     = ["zookeeper", "kafka", "cassandra", "spark_master", "spark_worker", "postgres", "airflow", "source", "registry", "objectstore", "monitor"]
  group_span = 16
  prefix_len = can(cidrhost(var.network_cidr, 0)) ? tonumber(split("/", var.network_cidr)[1]) : 24
  # Usable host numbers: everything but the network and broadcast addresses.
  max_hostnum = pow(2, 32 - local.prefix_len) - 2

  base_hosts = merge([
    for gi, g in local.groups : {
      for i in range(lookup(var.group_counts, g, 0)) :
      "${replace(g, "_", "-")}-${i + 1}" => {
        primary = g
        hostnum = var.first_hostnum + gi * local.group_span + i
      }
    }
  ]...)

  hosts = {
    for name, h in local.base_hosts : name => {
      groups    = distinct(concat([h.primary], lookup(var.colocated_groups, name, [])))
      hostnum   = h.hostnum
      ip        = try(cidrhost(var.network_cidr, h.hostnum), null)
      memory_mb = sum([for g in distinct(concat([h.primary], lookup(var.colocated_groups, name, []))) : lookup(var.group_memory_mb, g, 1024)])
    }
  }

  groups_served = distinct(flatten([for h in local.hosts : h.groups]))
  missing       = setsubtract(var.required_groups, local.groups_served)
  highest       = length(local.hosts) > 0 ? max([for h in local.hosts : h.hostnum]...) : 0

  labels = {
    "com.correnteza.project"    = "correnteza"
    "com.correnteza.deployment" = var.project
  }
}

# Topology checks that span several variables; they fail `terraform plan`.
resource "terraform_data" "topology" {
  input = keys(local.hosts)

  lifecycle {
    precondition {
      condition     = length(local.missing) == 0
      error_message = "group_counts: required group(s) ${join(", ", sort(tolist(local.missing)))} have no host; give them a count of at least 1 or list them in colocated_groups."
    }
    precondition {
      condition     = local.highest <= local.max_hostnum
      error_message = "network_cidr ${var.network_cidr} holds ${local.max_hostnum} hosts, but the topology (group_counts, ${local.group_span} addresses per group from first_hostnum ${var.first_hostnum}) needs host number ${local.highest}; use a larger network."
    }
    precondition {
      condition     = alltrue([for h in keys(var.colocated_groups) : contains(keys(local.base_hosts), h)])
      error_message = "colocated_groups names host(s) that do not exist: ${join(", ", [for h in keys(var.colocated_groups) : h if !contains(keys(local.base_hosts), h)])}."
    }
    precondition {
      condition     = alltrue([for h in keys(var.published_ports) : contains(keys(local.base_hosts), h)])
      error_message = "published_ports names host(s) that do not exist: ${join(", ", [for h in keys(var.published_ports) : h if !contains(keys(local.base_hosts), h)])}."
    }
    precondition {
      condition     = alltrue(flatten([for h, ps in var.published_ports : [for p in ps : contains(keys(local.contract_ports), p.port)]]))
      error_message = "published_ports names port(s) the contract does not define: ${join(", ", distinct(flatten([for h, ps in var.published_ports : [for p in ps : p.port if !contains(keys(local.contract_ports), p.port)]])))} (known: ${join(", ", sort(keys(local.contract_ports)))})."
    }
  }
}

resource "docker_network" "this" {
  name   = var.project
  driver = "bridge"

  ipam_config {
    subnet  = var.network_cidr
    gateway = cidrhost(var.network_cidr, 1)
  }

  dynamic "labels" {
    for_each = local.labels
    content {
      label = labels.key
      value = labels.value
    }
  }

  depends_on = [terraform_data.topology]
}

resource "docker_volume" "data" {
  for_each = local.hosts

  name = "${var.project}-${each.key}-data"

  dynamic "labels" {
    for_each = local.labels
    content {
      label = labels.key
      value = labels.value
    }
  }
}

resource "docker_container" "host" {
  for_each = local.hosts

  name     = "${var.project}-${each.key}"
  hostname = each.key
  image    = var.host_image
  restart  = "unless-stopped"

  # systemd as PID 1 without --privileged.
  capabilities {
    add = ["CAP_SYS_ADMIN"]
  }
  security_opts = ["seccomp=unconfined"]
  cgroupns_mode = "host"
  stop_signal   = "SIGRTMIN+3"
  tmpfs = {
    "/run"      = "rw,exec,mode=755"
    "/run/lock" = "rw,mode=1777"
  }

  volumes {
    host_path      = "/sys/fs/cgroup"
    container_path = "/sys/fs/cgroup"
    read_only      = false
  }

  volumes {
    volume_name    = docker_volume.data[each.key].name
    container_path = "/data"
  }

  memory      = each.value.memory_mb
  memory_swap = each.value.memory_mb

  # The host's name on the network: Docker's DNS on the project network answers
  # it for every peer, at every start, so a restarted host (and its peers) find
  # each other as they were, with no file to rewrite. Each container carries only
  # its own name: adding or moving a host touches no other container.
  networks_advanced {
    name         = docker_network.this.id
    ipv4_address = each.value.ip
    aliases      = [each.key]
  }

  dynamic "ports" {
    for_each = lookup(local.published, each.key, [])
    content {
      internal = ports.value.internal
      external = ports.value.external
      ip       = "127.0.0.1"
    }
  }

  # The deployment key, before first boot; sshd reads /etc/ssh/authorized_keys/%u.
  upload {
    content = "${trimspace(var.ssh_public_key)}\n"
    file    = "/etc/ssh/authorized_keys/${var.deploy_user}"
  }

  dynamic "labels" {
    for_each = merge(local.labels, { "com.correnteza.groups" = join(",", each.value.groups) })
    content {
      label = labels.key
      value = labels.value
    }
  }
}
