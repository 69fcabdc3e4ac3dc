"""`ClusterState`'s members as plain module constants.

Reading a member off the enum class costs a descriptor call (about 0.2 us here), paid per
cluster in the loops of a tick at 10,000 clusters; a module constant costs next to nothing.
"""

from failover.model import ClusterState

HEALTHY = ClusterState.HEALTHY
DEGRADED = ClusterState.DEGRADED
UNHEALTHY = ClusterState.UNHEALTHY
UNKNOWN = ClusterState.UNKNOWN
WAITING = ClusterState.WAITING
RECOVERING = ClusterState.RECOVERING
DRAINED = ClusterState.DRAINED
PASSING = frozenset({HEALTHY, DEGRADED})
