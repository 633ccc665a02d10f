# Grafana dashboards (included by the top-level Makefile).
#   make test-dashboards     SDK validation, links, drift, and every panel's SQL on the real engine
#   make dashboards-update   regenerate dashboards/*.json from dashboards/internal/build
.PHONY: test-dashboards dashboards-update

test-dashboards:
	@dsn=$$($(MAKE) -s clickhouse) && CLICKHOUSE_DSN=$$dsn $(GO) test -count=1 -timeout 10m ./dashboards/...

dashboards-update:
	$(GO) test -count=1 ./dashboards -run TestGenerated -update
