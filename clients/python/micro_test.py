#!/usr/bin/env python3
"""A Micro v3 SDK user's session, in Python, against one node's gRPC proxy.

The client stubs are generated at run time by grpcio-tools from the project's own
.proto files (proto/proto/), so this checks the wire contract those files promise to
any language, not the Rust types. It logs in, then drives auth, store, registry,
config, events (including a consumer that acks on the Consume stream) and the broker,
and checks the error codes of bad requests.

Usage: MICRO_PROXY=HOST:PORT python3 clients/python/micro_test.py
Prints one "ok: ..." line per step; exits 1 with "FAIL: ..." on the first failure.
"""

import importlib
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import grpc

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PROTO_DIR = os.path.join(ROOT, "proto", "proto")
PROTOS = ["auth", "store", "registry", "config", "events", "broker"]
NAMESPACE = "micro"
CALL_TIMEOUT_S = 10
LOGIN_DEADLINE_S = 30
STREAM_WAIT_S = 10
QUIET_WAIT_S = 3
BROKER_DEADLINE_S = 10
BROKER_RETRY_S = 0.2
PAYLOADS = [b"e0", b"e1", b"e2"]


class Failure(Exception):
    """A check that did not hold; the message says what was expected and what came."""


def check(condition, message):
    if not condition:
        raise Failure(message)


def ok(step):
    print(f"ok: {step}", flush=True)


def expect_code(code, call):
    """Runs `call`, which must fail with the gRPC status `code`."""
    try:
        result = call()
    except grpc.RpcError as err:
        check(err.code() == code, f"expected {code.name}, got {err.code().name}: {err.details()}")
        return
    raise Failure(f"expected {code.name}, got a success: {result!r}")


def generate_stubs(out_dir):
    """Generates the Python modules of every proto in one protoc call, importable as
    `auth.auth_pb2` and so on."""
    files = [f"{name}/{name}.proto" for name in PROTOS]
    command = [sys.executable, "-m", "grpc_tools.protoc", "-I", PROTO_DIR,
               f"--python_out={out_dir}", f"--grpc_python_out={out_dir}", *files]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    check(result.returncode == 0, f"protoc failed: {result.stderr.strip()}")
    # Regular packages, so that an installed module called `config` (say) cannot shadow
    # a namespace package of the same name.
    for name in PROTOS:
        open(os.path.join(out_dir, name, "__init__.py"), "w", encoding="utf-8").close()
    sys.path.insert(0, out_dir)


def load(name):
    """The generated (messages, services) modules of the proto package `name`."""
    messages = importlib.import_module(f"{name}.{name}_pb2")
    services = importlib.import_module(f"{name}.{name}_pb2_grpc")
    return messages, services


class StreamReader:
    """Reads a server stream on a background thread so the test can wait with a timeout."""

    def __init__(self, call):
        self.call = call
        self.items = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        try:
            for item in self.call:
                self.items.put(item)
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.CANCELLED:
                self.items.put(err)

    def next(self, timeout_s, what):
        try:
            item = self.items.get(timeout=timeout_s)
        except queue.Empty:
            raise Failure(f"no {what} within {timeout_s} s") from None
        if isinstance(item, grpc.RpcError):
            raise Failure(f"the stream failed before {what}: {item.code().name}: {item.details()}")
        return item

    def poll(self, timeout_s):
        """The next item, or None when none came within `timeout_s`."""
        try:
            item = self.items.get(timeout=timeout_s)
        except queue.Empty:
            return None
        if isinstance(item, grpc.RpcError):
            raise Failure(f"the stream failed: {item.code().name}: {item.details()}")
        return item

    def close(self):
        self.call.cancel()


class Session:
    """The channel, the generated modules and the caller's metadata."""

    def __init__(self, address):
        self.channel = grpc.insecure_channel(address)
        self.pb = {name: load(name)[0] for name in PROTOS}
        self.stubs = {}
        self.token = ""
        self.run = uuid.uuid4().hex[:8]

    def stub(self, package, service):
        key = (package, service)
        if key not in self.stubs:
            services = load(package)[1]
            self.stubs[key] = getattr(services, f"{service}Stub")(self.channel)
        return self.stubs[key]

    def metadata(self):
        pairs = [("micro-namespace", NAMESPACE)]
        if self.token:
            pairs.append(("authorization", f"Bearer {self.token}"))
        return pairs

    def call(self, package, service, method, request):
        rpc = getattr(self.stub(package, service), method)
        return rpc(request, metadata=self.metadata(), timeout=CALL_TIMEOUT_S)


def step_login(s):
    pb = s.pb["auth"]
    request = pb.TokenRequest(id="admin", secret="micro", options=pb.Options(namespace=NAMESPACE))
    # A node that has just started may still be electing a leader and creating the admin.
    deadline = time.monotonic() + LOGIN_DEADLINE_S
    while True:
        try:
            token = s.call("auth", "Auth", "Token", request).token
            break
        except grpc.RpcError as err:
            if time.monotonic() > deadline:
                raise Failure(f"cannot log in: {err.code().name}: {err.details()}") from None
            time.sleep(0.2)
    check(token.access_token, f"the token has no access token: {token!r}")
    s.token = token.access_token
    inspect = pb.InspectRequest(token=s.token, options=pb.Options(namespace=NAMESPACE))
    account = s.call("auth", "Auth", "Inspect", inspect).account
    check(account.id == "admin", f"Inspect names {account.id!r}, not admin")
    ok("auth token/inspect")


def step_guards(s):
    anonymous = s.stub("store", "Store").Read
    request = s.pb["store"].ReadRequest(key="anything")
    metadata = [("micro-namespace", NAMESPACE)]
    expect_code(grpc.StatusCode.UNAUTHENTICATED,
                lambda: anonymous(request, metadata=metadata, timeout=CALL_TIMEOUT_S))
    ok("anonymous store read is unauthenticated")


def step_store(s):
    pb = s.pb["store"]
    key, value = f"py-{s.run}", b"\x00hello from python\xff"
    s.call("store", "Store", "Write", pb.WriteRequest(record=pb.Record(key=key, value=value)))
    records = s.call("store", "Store", "Read", pb.ReadRequest(key=key)).records
    check([r.value for r in records] == [value], f"read back {records!r}, wanted {value!r}")
    listing = s.call("store", "Store", "List", pb.ListRequest())
    keys = [k for response in listing for k in response.keys]
    check(key in keys, f"List has no {key!r}: {keys!r}")
    s.call("store", "Store", "Delete", pb.DeleteRequest(key=key))
    expect_code(grpc.StatusCode.NOT_FOUND,
                lambda: s.call("store", "Store", "Read", pb.ReadRequest(key=key)))
    ok("store write/read/list/delete")


def step_registry(s):
    pb = s.pb["registry"]
    services = s.call("registry", "Registry", "ListServices", pb.ListRequest()).services
    names = {service.name for service in services}
    check({"store", "events"} <= names, f"ListServices lacks a core service: {sorted(names)}")
    found = s.call("registry", "Registry", "GetService", pb.GetRequest(service="store")).services
    check(found and all(x.name == "store" for x in found), f"GetService(store) gave {found!r}")
    ok("registry list/get")


def step_config(s):
    pb = s.pb["config"]

    def set_value(path, data):
        value = pb.Value(data=data, format="json")
        return s.call("config", "Config", "Set",
                      pb.SetRequest(namespace=NAMESPACE, path=path, value=value))

    set_value("py.db", json.dumps({"host": "x", "port": 5432}))
    set_value("py.db.user", json.dumps("u"))
    got = s.call("config", "Config", "Get", pb.GetRequest(namespace=NAMESPACE, path="py.db"))
    merged = json.loads(got.value.data)
    want = {"host": "x", "port": 5432, "user": "u"}
    check(merged == want, f"Get py.db gave {merged!r}, wanted {want!r}")
    ok("config set/merge/get")


def step_events_store(s, topic):
    pb = s.pb["events"]
    for i, payload in enumerate(PAYLOADS):
        request = pb.PublishRequest(topic=topic, payload=payload, metadata={"n": str(i)})
        s.call("events", "Stream", "Publish", request)
    events = s.call("events", "Store", "Read", pb.ReadRequest(topic=topic)).events
    payloads = [e.payload for e in events]
    check(payloads == PAYLOADS, f"events.Store/Read gave {payloads!r}, wanted {PAYLOADS!r}")
    numbers = [e.metadata["n"] for e in events]
    check(numbers == ["0", "1", "2"], f"metadata n is {numbers!r}, wanted 0, 1, 2")
    ok("events publish/read")


def step_events_consume(s, topic):
    """The generated server-streaming stub: the client half-closes after its request."""
    pb = s.pb["events"]
    call = s.stub("events", "Stream").Consume(pb.ConsumeRequest(topic=topic, offset=1),
                                              metadata=s.metadata())
    reader = StreamReader(call)
    try:
        got = [reader.next(STREAM_WAIT_S, f"event {i}").payload for i in range(len(PAYLOADS))]
    finally:
        reader.close()
    check(got == PAYLOADS, f"Consume replayed {got!r}, wanted {PAYLOADS!r}")
    ok("events consume (generated stub)")


def step_events_ack(s, topic):
    """A group consumer that acks by id on the Consume stream; acked events stay acked."""
    pb = s.pb["events"]
    consume = s.channel.stream_stream("/events.Stream/Consume",
                                      request_serializer=lambda b: b,
                                      response_deserializer=pb.Event.FromString)
    first = pb.ConsumeRequest(group="py", topic=topic, offset=1, auto_ack=False,
                              ack_wait=2_000_000_000, retry_limit=-1)
    acks = queue.Queue()

    def requests():
        yield first.SerializeToString()
        while (ack := acks.get()) is not None:
            yield ack

    reader = StreamReader(consume(requests(), metadata=s.metadata()))
    try:
        got = []
        for i in range(len(PAYLOADS)):
            event = reader.next(STREAM_WAIT_S, f"event {i}")
            got.append(event.payload)
            acks.put(pb.AckRequest(id=event.id, success=True).SerializeToString())
        check(got == PAYLOADS, f"the group consumer got {got!r}, wanted {PAYLOADS!r}")
        again = reader.poll(QUIET_WAIT_S)
        if again is not None:
            raise Failure(f"acked event {again.payload!r} (id {again.id}) came back")
    finally:
        acks.put(None)
        reader.close()
    ok("events consume with acks (no redelivery)")


def step_broker(s):
    pb = s.pb["broker"]
    topic = f"py-news-{s.run}"
    call = s.stub("broker", "Broker").Subscribe(pb.SubscribeRequest(topic=topic),
                                               metadata=s.metadata())
    reader = StreamReader(call)
    body = b"hello subscribers"
    # The subscription opens a moment after the call: publish until it hears one.
    deadline = time.monotonic() + BROKER_DEADLINE_S
    try:
        message = None
        while message is None:
            check(time.monotonic() < deadline, f"no message within {BROKER_DEADLINE_S} s")
            publish = pb.PublishRequest(topic=topic, message=pb.Message(body=body))
            s.call("broker", "Broker", "Publish", publish)
            message = reader.poll(BROKER_RETRY_S)
    finally:
        reader.close()
    check(message.body == body, f"the subscriber got {message.body!r}")
    ok("broker subscribe/publish")


def step_errors(s):
    events, config = s.pb["events"], s.pb["config"]
    empty_topic = events.PublishRequest(topic="", payload=b"x")
    expect_code(grpc.StatusCode.INVALID_ARGUMENT,
                lambda: s.call("events", "Stream", "Publish", empty_topic))
    bad = config.SetRequest(namespace=NAMESPACE, path="py.bad",
                            value=config.Value(data="not json", format="json"))
    expect_code(grpc.StatusCode.INVALID_ARGUMENT, lambda: s.call("config", "Config", "Set", bad))
    ok("errors (empty topic, bad json)")


def run(address):
    s = Session(address)
    topic = f"py-events-{s.run}"
    steps = [
        (step_login, ()), (step_guards, ()), (step_store, ()), (step_registry, ()),
        (step_config, ()), (step_events_store, (topic,)), (step_events_consume, (topic,)),
        (step_events_ack, (topic,)), (step_broker, ()), (step_errors, ()),
    ]
    for step, args in steps:
        name = step.__name__.removeprefix("step_")
        try:
            step(s, *args)
        except Failure as failure:
            raise Failure(f"{name}: {failure}") from None
        except grpc.RpcError as err:
            raise Failure(f"{name}: unexpected {err.code().name}: {err.details()}") from None


def main():
    address = os.environ.get("MICRO_PROXY", "")
    if not address:
        print("FAIL: set MICRO_PROXY to the node's proxy address (HOST:PORT)", file=sys.stderr)
        return 2
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="micro-py-") as out_dir:
        try:
            generate_stubs(out_dir)
            run(address)
        except Failure as failure:
            print(f"FAIL: {failure}", file=sys.stderr)
            return 1
    print(f"passed in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
