# Deployment files (included by the top-level Makefile). No Docker or
# cluster needed; `docker compose config` and `kubectl kustomize` run when
# those clients are installed.
.PHONY: test-deploy test-shard

test-deploy:
	$(GO) test -count=1 -timeout 5m ./deploy/

# Two shards and a router on local endpoints (native chDB), checked against
# a single node (deploy/shard; about 2 minutes, three engines).
test-shard:
	$(GO) test -count=1 -timeout 15m ./deploy/shard/
