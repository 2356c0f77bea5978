"""
Unit tests for :func:`kafka_bridge.kafka.partition_for` (no broker).

``modulo`` is the seed's ``roomId % partitions``; ``hash`` must put a record
where Kafka's Java producer puts a keyed record:
``Utils.toPositive(Utils.murmur2(keyBytes)) % numPartitions``. The murmur2
vectors are those of Kafka's ``UtilsTest.testMurmur2``; a reference murmur2
written here from Kafka's ``Utils.murmur2`` checks them independently of the
implementation the gateway uses. ``nginx-hash`` must be nginx's non-consistent
upstream ``hash`` (checked against a reference CRC-32 here, and against a real
nginx in test_nginx_hash.py).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kafka_bridge.kafka import nginx_hash, partition_for

# Kafka's clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java,
# testMurmur2: key bytes -> murmur2 as a Java (signed 32-bit) int.
MURMUR2_VECTORS: list[tuple[str, int]] = [
    ("21", -973932308),
    ("foobar", -790332482),
    ("a-little-bit-long-string", -985981536),
    ("a-little-bit-longer-string", -1486304829),
    ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    ("abc", 479470107),
]


def java_int(value: int) -> int:
    """Wrap ``value`` to a Java int (signed 32-bit)."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def reference_murmur2(data: bytes) -> int:
    """Kafka's ``Utils.murmur2``, transcribed; returns a Java int."""
    length = len(data)
    seed = 0x9747B28C
    m = 0x5BD1E995
    r = 24
    h = (seed ^ length) & 0xFFFFFFFF
    for i in range(length // 4):
        i4 = i * 4
        k = int.from_bytes(data[i4 : i4 + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r  # Java's >>> on an int: k is unsigned here
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    tail = length & ~3
    rest = length % 4
    if rest == 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h ^= data[tail]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return java_int(h)


def to_positive(number: int) -> int:
    """Kafka's ``Utils.toPositive``: ``number & 0x7fffffff``."""
    return number & 0x7FFFFFFF


# The partitions Kafka's producer picks for the vectors' keys:
# toPositive(murmur2) % partitions, worked out from the Java ints.
EXPECTED_HASH_PARTITIONS: list[tuple[str, int, int]] = [
    # key, partitions, partition
    ("21", 3, 0),  # toPositive(-973932308) = 1173551340
    ("21", 6, 0),
    ("21", 7, 3),
    ("foobar", 3, 0),  # toPositive(-790332482) = 1357151166
    ("foobar", 7, 0),
    ("a-little-bit-long-string", 3, 2),  # 1161502112
    ("a-little-bit-long-string", 10, 2),
    ("a-little-bit-longer-string", 3, 2),  # 661178819
    ("a-little-bit-longer-string", 10, 9),
    ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", 3, 2),  # 2088585677
    ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", 10, 7),
    ("abc", 3, 0),  # 479470107
    ("abc", 4, 3),
    ("abc", 10, 7),
]


@pytest.mark.parametrize(("key", "expected"), MURMUR2_VECTORS)
def test_reference_murmur2_matches_kafka_vectors(key: str, expected: int) -> None:
    assert reference_murmur2(key.encode()) == expected


@pytest.mark.parametrize(("key", "partitions", "expected"), EXPECTED_HASH_PARTITIONS)
def test_hash_partition_of_kafka_vectors(key: str, partitions: int, expected: int) -> None:
    murmur = dict(MURMUR2_VECTORS)[key]
    assert to_positive(murmur) % partitions == expected  # the table is right
    assert partition_for(key, partitions, "hash") == expected


@pytest.mark.parametrize(("key", "murmur"), MURMUR2_VECTORS)
@pytest.mark.parametrize("partitions", [1, 2, 3, 5, 12, 50, 1000])
def test_hash_is_java_to_positive_murmur2_mod(key: str, murmur: int, partitions: int) -> None:
    assert partition_for(key, partitions, "hash") == to_positive(murmur) % partitions


@pytest.mark.parametrize("partitions", [1, 3, 7, 16])
def test_hash_of_room_ids_matches_reference(partitions: int) -> None:
    keys = [*(str(room) for room in range(1, 500)), str(2**63 - 1), "9007199254740993"]
    for key in keys:
        expected = to_positive(reference_murmur2(key.encode())) % partitions
        assert partition_for(key, partitions, "hash") == expected, key


def test_hash_of_non_ascii_key_uses_utf8_bytes() -> None:
    key = "방-4"
    expected = to_positive(reference_murmur2(key.encode("utf-8"))) % 5
    assert partition_for(key, 5, "hash") == expected


def test_hash_is_in_range_and_differs_from_modulo() -> None:
    partitions = 3
    hashed = [partition_for(str(room), partitions, "hash") for room in range(1, 61)]
    assert set(hashed) == {0, 1, 2}
    assert hashed != [room % partitions for room in range(1, 61)]


@pytest.mark.parametrize(
    ("room", "partitions", "expected"),
    [
        (1, 3, 1),
        (2, 3, 2),
        (3, 3, 0),
        (4, 3, 1),
        (5, 3, 2),
        (6, 3, 0),
        (4, 1, 0),
        (4, 4, 0),
        (7, 4, 3),
        (100, 7, 2),
        (2**63 - 1, 3, (2**63 - 1) % 3),
        (2**63 - 1, 10, 7),
    ],
)
def test_modulo_is_room_id_mod_partitions(room: int, partitions: int, expected: int) -> None:
    assert partition_for(str(room), partitions, "modulo") == expected


@pytest.mark.parametrize("partitions", [1, 2, 3, 8])
def test_modulo_for_many_rooms(partitions: int) -> None:
    for room in range(1, 1000):
        assert partition_for(str(room), partitions, "modulo") == room % partitions


def reference_crc32(data: bytes) -> int:
    """CRC-32 (IEEE 802.3, reflected, as nginx's ngx_crc32), bit by bit."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0xEDB88320 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def reference_nginx_peer(key: str, servers: int) -> int:
    """
    The server ngx_http_upstream_hash_module (no ``consistent``) picks first,
    among equal-weight servers: ``((crc32(key) >> 16) & 0x7fff) % total_weight``.
    """
    return ((reference_crc32(key.encode()) >> 16) & 0x7FFF) % servers


def test_reference_crc32_check_value() -> None:
    assert reference_crc32(b"123456789") == 0xCBF43926  # the CRC-32 check value


def test_nginx_hash_of_check_value() -> None:
    assert nginx_hash("123456789") == 0xCBF4 & 0x7FFF
    assert partition_for("123456789", 64, "nginx-hash") == (0xCBF4 & 0x7FFF) % 64


@given(room=st.integers(min_value=0, max_value=2**63 - 1), partitions=st.integers(1, 1024))
def test_nginx_hash_partition_matches_reference(room: int, partitions: int) -> None:
    expected = ((reference_crc32(str(room).encode()) >> 16) & 0x7FFF) % partitions
    assert partition_for(str(room), partitions, "nginx-hash") == expected


@given(
    room=st.integers(min_value=0, max_value=2**63 - 1),
    servers=st.integers(1, 16),
    multiple=st.integers(1, 32),
)
def test_nginx_hash_server_is_partition_mod_servers(room: int, servers: int, multiple: int) -> None:
    """With K servers and P = m·K partitions, nginx's server is ``partition % K``."""
    partition = partition_for(str(room), servers * multiple, "nginx-hash")
    assert partition % servers == reference_nginx_peer(str(room), servers)


@given(key=st.text(max_size=40))
def test_nginx_hash_of_any_key_is_15_bits_of_crc32(key: str) -> None:
    assert nginx_hash(key) == (reference_crc32(key.encode()) >> 16) & 0x7FFF
