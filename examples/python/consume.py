#!/usr/bin/env python3
"""Consume one topic of zego-kafka-bridge the way a downstream team would.

Each record's CloudEvents headers are read with the CloudEvents SDK and checked against the
event they carry, each value is validated against its JSON Schema, and duplicates are dropped on
`id` (delivery is at least once). Every distinct event is printed as one JSON line.

    pip install -r examples/python/requirements.txt
    python3 examples/python/consume.py --brokers localhost:9092 --topic zego.room.closed

With --registry URL the values are in a schema registry's wire format (the bridge runs with
ZEGO_BRIDGE_SCHEMA_REGISTRY_URL): Confluent's JSON Schema deserializer reads each one, fetching
the schema by the id the value carries and validating the event against it.

A cluster with SASL or TLS takes librdkafka's properties, as the bridge's
ZEGO_BRIDGE_LIBRDKAFKA_* do:

    python3 examples/python/consume.py --brokers b-1.kafka.example.com:9096 --topic zego.room.closed \
        -X security.protocol=SASL_SSL -X sasl.mechanisms=SCRAM-SHA-512 \
        -X sasl.username=reader -X sasl.password="$PASSWORD" -X ssl.ca.location=ca.pem

With --expect N it stops once N distinct events have arrived and exits 1 if they do not within
--timeout seconds, or if any record fails a check: CI runs it that way, so it cannot rot.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path

import jsonschema
from cloudevents.core.bindings import kafka as cloudevents_kafka
from confluent_kafka import Consumer, KafkaError
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.json_schema import JSONDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def schema_validator(event_type: str, schemas: Path) -> jsonschema.Validator:
    """The validator of a type's schema, from the repository's schemas/ directory."""
    schema = json.loads((schemas / f"{event_type}.schema.json").read_text())
    return jsonschema.Draft202012Validator(schema)


class Registry:
    """A schema registry's reader of the Confluent wire format: byte 0, the schema id in four
    bytes big-endian, then the JSON."""

    def __init__(self, url: str):
        self.client = SchemaRegistryClient({"url": url})
        # No schema of its own: the writer's schema, fetched by the id in each value.
        self.deserializer = JSONDeserializer(None, schema_registry_client=self.client)

    def read(self, message) -> tuple[bytes, dict | None, list[str]]:
        """The JSON of a framed value, the schema it names, and what is wrong."""
        raw = message.value()
        if len(raw) < 5 or raw[0] != 0:
            return raw, None, ["the value is not in the schema registry's wire format"]
        problems = []
        try:
            self.deserializer(raw, SerializationContext(message.topic(), MessageField.VALUE))
        except Exception as error:  # an unknown id, or an event its schema refuses
            problems.append(f"registry: {error}")
        schema = json.loads(self.client.get_schema(int.from_bytes(raw[1:5], "big")).schema_str)
        return raw[5:], schema, problems


def problems_of(
    message, validators: dict, schemas: Path, registry: Registry | None
) -> tuple[dict | None, list[str]]:
    """The event a record carries, and what is wrong with it (nothing, for a good record)."""
    headers = {name: value for name, value in (message.headers() or [])}
    raw, registry_schema, problems = message.value(), None, []
    if registry is not None:
        raw, registry_schema, problems = registry.read(message)
    event = cloudevents_kafka.from_binary_event(
        cloudevents_kafka.KafkaMessage(headers=headers, key=message.key(), value=raw)
    )
    value = event.get_data()
    if not isinstance(value, dict):
        return None, [f"the value is not a JSON object: {value!r}"]
    event_type = value.get("type", "")
    if event_type not in validators:
        validators[event_type] = schema_validator(event_type, schemas)
    problems += [f"schema: {error.message}" for error in validators[event_type].iter_errors(value)]
    if registry_schema is not None and registry_schema != validators[event_type].schema:
        problems.append("the registry's schema of the record is not the repository's")
    key = message.key().decode() if message.key() is not None else None
    expected = {
        "specversion": (event.get_specversion(), "1.0"),
        "id": (event.get_id(), value.get("id")),
        "type": (event.get_type(), f"com.zegocloud.{event_type}"),
        "source": (event.get_source(), f"zegocloud://apps/{value.get('app_id')}"),
        "subject": (event.get_subject(), key),
        "dataschema": (event.get_dataschema(), validators[event_type].schema["$id"]),
        "datacontenttype": (event.get_datacontenttype(), "application/json"),
    }
    for name, (found, wanted) in expected.items():
        if found != wanted:
            problems.append(f"ce_{name} is {found!r}, expected {wanted!r}")
    try:
        uuid.UUID(value.get("id", ""))
    except ValueError:
        problems.append(f"id {value.get('id')!r} is not a UUID")
    return value, problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--brokers", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", default=f"zego-example-{uuid.uuid4()}")
    parser.add_argument("--schemas", type=Path, default=SCHEMAS)
    parser.add_argument("--registry", help="the schema registry's URL: values are framed")
    parser.add_argument("--expect", type=int, help="stop after this many distinct events")
    parser.add_argument("--expect-duplicates", type=int, help="and check how many were repeats")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("-X", dest="properties", action="append", default=[], metavar="KEY=VALUE",
                        help="a librdkafka property (security.protocol, sasl.*, ssl.*), repeatable")
    args = parser.parse_args()

    config = {
        "bootstrap.servers": args.brokers,
        "group.id": args.group,
        "auto.offset.reset": "earliest",
        # A real consumer commits after handling; the example reads and lets go.
        "enable.auto.commit": False,
    }
    for pair in args.properties:
        key, separator, value = pair.partition("=")
        if not separator:
            parser.error(f"-X {pair}: expected KEY=VALUE")
        config[key] = value
    consumer = Consumer(config)
    consumer.subscribe([args.topic])
    registry = Registry(args.registry) if args.registry else None
    validators: dict = {}
    seen: set[str] = set()
    duplicates = 0
    failures: list[str] = []
    deadline = time.monotonic() + args.timeout
    try:
        while time.monotonic() < deadline and (args.expect is None or len(seen) < args.expect):
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error():
                if message.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise RuntimeError(message.error())
            value, problems = problems_of(message, validators, args.schemas, registry)
            where = f"{message.topic()}[{message.partition()}]@{message.offset()}"
            failures.extend(f"{where}: {problem}" for problem in problems)
            if value is None or value["id"] in seen:
                duplicates += value is not None
                continue
            seen.add(value["id"])
            print(json.dumps(value, ensure_ascii=False), flush=True)
        # Whatever else arrives shortly after is read too, so that a repeat is counted.
        quiet_until = time.monotonic() + 2
        while args.expect is not None and time.monotonic() < quiet_until:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            value, problems = problems_of(message, validators, args.schemas, registry)
            failures.extend(problems)
            if value is not None and value["id"] in seen:
                duplicates += 1
            elif value is not None:
                seen.add(value["id"])
    finally:
        consumer.close()

    print(f"{args.topic}: {len(seen)} distinct events, {duplicates} duplicates dropped",
          file=sys.stderr)
    if args.expect is not None and len(seen) != args.expect:
        failures.append(f"expected {args.expect} distinct events, read {len(seen)}")
    if args.expect_duplicates is not None and duplicates != args.expect_duplicates:
        failures.append(f"expected {args.expect_duplicates} duplicates, saw {duplicates}")
    for failure in failures:
        print(f"FAILED {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
