"""Dockyard: a self-hosted container registry that speaks OCI Distribution and ACR's protocols."""

__version__ = "0.1.0"
