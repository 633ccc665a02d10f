# Deployment files (included by the top-level Makefile). No Docker or
# cluster needed; `docker compose config` and `kubectl kustomize` run when
# those clients are installed.
.PHONY: test-deploy

test-deploy:
	$(GO) test -count=1 -timeout 5m ./deploy/
