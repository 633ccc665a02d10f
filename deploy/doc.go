// Package deploy holds no code: it is the home of the deployment files
// (docker/, compose/, kubernetes/, grafana/, clickhouse/; local/ is the
// development endpoint) and of the tests that check them without Docker or
// a cluster: every file parses, every reference between them resolves
// (services, images, volumes, ConfigMaps, Secrets, ports, host names), the
// collector configurations pass the collector's own validation with the
// real components, the scheduler configurations load, and the ClickHouse
// cluster configuration matches what the exporter's cluster mode targets.
package deploy
