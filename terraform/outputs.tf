output "hosts" {
  description = "Every host: its address, groups, memory limit and container name."
  value = {
    for name, h in local.hosts : name => {
      ip        = h.ip
      groups    = h.groups
      memory_mb = h.memory_mb
      container = docker_container.host[name].name
    }
  }
}

output "network" {
  description = "The private network's name and CIDR."
  value = {
    name = docker_network.this.name
    cidr = var.network_cidr
  }
}

output "inventory" {
  description = "The Ansible inventory (YAML inventory structure): a group per role, connection settings in all.vars."
  value = {
    all = {
      vars = {
        ansible_user                 = var.deploy_user
        ansible_ssh_private_key_file = var.ssh_private_key_file
        ansible_python_interpreter   = "/usr/bin/python3"
        correnteza_network_cidr      = var.network_cidr
        correnteza_project           = var.project
        # Contract port name -> the control node's 127.0.0.1 port it is published on.
        correnteza_published_ports = merge([for h, ps in var.published_ports : { for p in ps : p.port => p.external }]...)
      }
      children = {
        for g in local.groups : g => {
          hosts = {
            for name, h in local.hosts : name => {
              ansible_host         = h.ip
              correnteza_ip        = h.ip
              correnteza_memory_mb = h.memory_mb
            } if contains(h.groups, g)
          }
        }
      }
    }
  }
}
