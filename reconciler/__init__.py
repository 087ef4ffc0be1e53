"""llm-registry: a declarative, GitOps-style reconciler for an LLM model registry."""

__version__ = "0.1.0"

# The mark on every row the reconciler writes (llm_models.managed_by).
MANAGED_BY = "llm-registry"
