"""Where clusters come from besides the config file: registration through the admin API
(and, to come, discovery files), composed with the file's into the config the daemon runs."""

from failover.registry.registered import (
    RegistrationRefused,
    Registry,
    RegistryUnreadable,
    cluster_from_body,
    compose,
    problems,
)

__all__ = ["RegistrationRefused", "Registry", "RegistryUnreadable", "cluster_from_body",
           "compose", "problems"]
