"""
The Kafka bus's settings, apart from :mod:`kafka_bridge.kafka` so that reading
them does not import aiokafka.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

__all__ = ["FanOutPartitions", "KafkaSettings", "Partitioner"]

Partitioner = Literal["modulo", "hash", "nginx-hash"]
FanOutPartitions = Literal["all", "interest"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class KafkaSettings:
    """
    Where and how to use Kafka.

    Attributes:
        bootstrap: ``HOST:PORT[,HOST:PORT...]``.
        topic: The chat topic.
        partitions: Partitions the topic must have (at least).
        replication_factor: Replicas of a topic created here.
        partitioner: ``modulo`` (room id % partitions), ``hash`` (murmur2) or
            ``nginx-hash`` (nginx's non-consistent upstream ``hash``).
        send_timeout: Seconds a record may take to be acknowledged.
        fan_out_partitions: ``all`` (every instance reads every partition)
            or ``interest`` (only the partitions of watched keys).

    """

    bootstrap: str
    topic: str = "chat"
    partitions: int = 3
    replication_factor: int = 1
    partitioner: Partitioner = "modulo"
    send_timeout: float = 5.0
    fan_out_partitions: FanOutPartitions = "all"
