# `terraform test` with the docker provider mocked: topology, addresses and the
# inventory's shape, without a Docker engine.

mock_provider "docker" {}

variables {
  host_image     = "correnteza/host:test"
  ssh_public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITestKeyOnlyForTerraformTest test"
}

run "default_topology" {
  command = plan

  assert {
    condition     = length(local.hosts) == 18
    error_message = "the default topology must have 18 hosts"
  }

  assert {
    condition = toset(keys(local.hosts)) == toset([
      "zookeeper-1", "zookeeper-2", "zookeeper-3", "kafka-1", "kafka-2", "kafka-3",
      "cassandra-1", "cassandra-2", "cassandra-3", "spark-master-1", "spark-worker-1", "spark-worker-2",
      "postgres-1", "airflow-1", "source-1", "registry-1", "objectstore-1", "monitor-1",
    ])
    error_message = "hosts must be named <group>-<n> with underscores as dashes"
  }

  assert {
    condition     = local.hosts["zookeeper-1"].ip == "10.77.0.10" && local.hosts["kafka-1"].ip == "10.77.0.26" && local.hosts["source-1"].ip == "10.77.0.122" && local.hosts["registry-1"].ip == "10.77.0.138" && local.hosts["objectstore-1"].ip == "10.77.0.154" && local.hosts["monitor-1"].ip == "10.77.0.170"
    error_message = "addresses come from cidrhost: first_hostnum 10 plus 16 per group"
  }

  assert {
    condition     = length(distinct([for h in local.hosts : h.ip])) == length(local.hosts)
    error_message = "every host must have its own address"
  }

  assert {
    condition     = docker_container.host["cassandra-2"].memory == 2304 && docker_container.host["cassandra-2"].memory_swap == 2304
    error_message = "memory and memory_swap come from group_memory_mb"
  }

  assert {
    condition     = docker_container.host["objectstore-1"].memory == 512 && docker_container.host["kafka-1"].memory == 1152 && docker_container.host["source-1"].memory == 384 && docker_container.host["monitor-1"].memory == 768
    error_message = "the object store's 512 MiB come from kafka (1280 -> 1152 MiB each) and the source (512 -> 384 MiB); the monitor's 768 MiB from cassandra (2560 -> 2304 MiB each)"
  }

  assert {
    condition     = sum([for h in local.hosts : h.memory_mb]) == 24576
    error_message = "the default topology must fill, and fit, a 24 GiB machine (24576 MiB of limits)"
  }

  assert {
    condition     = length([for v in docker_container.host["objectstore-1"].volumes : v if v.container_path == "/data"]) == 1 && docker_volume.data["objectstore-1"].name == "correnteza-objectstore-1-data"
    error_message = "the object store keeps its data on its own Docker volume at /data"
  }

  assert {
    condition = alltrue([
      for name, c in docker_container.host :
      join(",", sort(flatten([for n in c.networks_advanced : tolist(n.aliases)]))) == name
    ])
    error_message = "every container must carry its host name, and only it, as its alias on the network: Docker's DNS answers it to every peer at every start"
  }
}

run "inventory_shape" {
  command = plan

  assert {
    condition     = toset(keys(output.inventory.all.children)) == toset(["zookeeper", "kafka", "cassandra", "spark_master", "spark_worker", "postgres", "airflow", "source", "registry", "objectstore", "monitor"])
    error_message = "the inventory needs a group per role"
  }

  assert {
    condition     = keys(output.inventory.all.children.kafka.hosts) == ["kafka-1", "kafka-2", "kafka-3"]
    error_message = "the kafka group must list kafka-1..3"
  }

  assert {
    condition     = output.inventory.all.children.cassandra.hosts["cassandra-1"].ansible_host == "10.77.0.42"
    error_message = "inventory hosts must carry ansible_host = their private IP"
  }

  assert {
    condition     = output.inventory.all.vars.ansible_user == "deploy" && output.inventory.all.vars.correnteza_network_cidr == "10.77.0.0/24"
    error_message = "connection settings belong in all.vars"
  }
}

run "published_ports_follow_the_contract" {
  command = plan

  assert {
    condition     = local.published["airflow-1"][0].internal == 8080 && local.published["spark-master-1"][0].internal == 8080
    error_message = "published UIs must take their internal port from the contract (correnteza_port_*)"
  }

  assert {
    condition     = output.inventory.all.vars.correnteza_published_ports == { airflow_api = 8080, spark_master_ui = 8081, spark_driver_ui = 4040 }
    error_message = "the inventory must say where each UI is published on the control node"
  }
}

run "rejects_unknown_contract_port" {
  command = plan

  variables {
    published_ports = { "airflow-1" = [{ port = "no_such_port", external = 18080 }] }
  }

  expect_failures = [terraform_data.topology]
}

run "colocation" {
  command = plan

  variables {
    group_counts     = { zookeeper = 1, kafka = 1, cassandra = 1, spark_master = 1, spark_worker = 1, postgres = 1, airflow = 0, source = 1, registry = 0, objectstore = 0, monitor = 0 }
    colocated_groups = { "spark-master-1" = ["airflow"], "postgres-1" = ["registry"], "source-1" = ["objectstore", "monitor"] }
    published_ports  = {}
  }

  assert {
    condition     = contains(keys(output.inventory.all.children.airflow.hosts), "spark-master-1")
    error_message = "a co-located group must list the host that carries it"
  }

  assert {
    condition     = contains(keys(output.inventory.all.children.registry.hosts), "postgres-1")
    error_message = "the registry can share the PostgreSQL host"
  }

  assert {
    condition     = contains(keys(output.inventory.all.children.objectstore.hosts), "source-1") && local.hosts["source-1"].memory_mb == 384 + 512 + 768
    error_message = "the object store and the monitor can share the source host, which gets every group's memory"
  }

  assert {
    condition     = local.hosts["spark-master-1"].memory_mb == 2048 + 3072
    error_message = "a co-located host's memory is the sum of its groups'"
  }

  assert {
    condition     = join(",", sort(flatten([for c in docker_container.host : [for n in c.networks_advanced : tolist(n.aliases)]]))) == "cassandra-1,kafka-1,postgres-1,source-1,spark-master-1,spark-worker-1,zookeeper-1"
    error_message = "with co-location every host has one name on the network (a co-located group adds no name)"
  }
}

run "custom_cidr" {
  command = plan

  variables {
    network_cidr = "192.168.50.0/24"
  }

  assert {
    condition     = local.hosts["postgres-1"].ip == "192.168.50.90"
    error_message = "addresses follow network_cidr"
  }
}

run "rejects_required_group_at_zero" {
  command = plan

  variables {
    group_counts = { zookeeper = 3, kafka = 0, cassandra = 3, spark_master = 1, spark_worker = 2, postgres = 1, airflow = 1, source = 1 }
  }

  expect_failures = [terraform_data.topology]
}

run "rejects_unknown_group" {
  command = plan

  variables {
    group_counts = { zookeeper = 3, kafka = 3, cassandra = 3, spark_master = 1, spark_worker = 2, postgres = 1, airflow = 1, source = 1, hadoop = 1 }
  }

  expect_failures = [var.group_counts]
}

run "rejects_malformed_cidr" {
  command = plan

  variables {
    network_cidr = "10.77.0.0/33"
  }

  expect_failures = [var.network_cidr]
}

run "rejects_more_hosts_than_the_cidr_holds" {
  command = plan

  variables {
    network_cidr = "10.77.0.0/26"
  }

  expect_failures = [terraform_data.topology]
}

run "rejects_bad_public_key" {
  command = plan

  variables {
    ssh_public_key = "not a key"
  }

  expect_failures = [var.ssh_public_key]
}
