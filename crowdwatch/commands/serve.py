"""``crowdwatch serve``: an NVIDIA Triton server (through PyTriton) that runs the network for many boxes.

    crowdwatch serve                     # the packaged weights on OpenVINO, no torch
    crowdwatch serve --backend openvino --weights models/p2pnet.xml
    crowdwatch serve --backend torch --weights default --address 127.0.0.1 --port 8001

Boxes with ``model.backend: triton`` and ``model.url: grpc://HOST:PORT`` send it their preprocessed
batches; Triton's dynamic batcher merges the requests of all boxes. Triton's own Prometheus metrics
(``nv_inference_request_success``, ``nv_inference_exec_count``, queue and compute times) are on
``http://METRICS_ADDRESS:METRICS_PORT/metrics``. Everything binds 127.0.0.1 unless told otherwise; a
gRPC address beyond loopback needs mutual TLS (``--tls-cert``, ``--tls-key``, ``--tls-client-ca``): only
boxes holding a certificate from that CA may use the pool. Runs until SIGTERM or SIGINT. Needs the
``crowdwatch[serve]`` extra under Debian's ``/usr/bin/python3`` (docs/triton.md).
"""

from __future__ import annotations

import argparse
import ipaddress
import signal
import sys
import threading
from pathlib import Path

from crowdwatch.choices import BACKENDS, PRECISIONS
from crowdwatch.commands import help_text
from crowdwatch.commands.model_options import add_weights_argument
from crowdwatch.errors import UsageError
from crowdwatch.model.triton_repo import DEFAULT_MAX_BATCH, DEFAULT_QUEUE_DELAY_US

#: What the pool can run: every local backend (a pool does not forward to another pool).
SERVE_BACKENDS = tuple(name for name in BACKENDS if name != "triton")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crowdwatch serve",
        description=help_text(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_weights_argument(parser)
    parser.add_argument("--backend", choices=SERVE_BACKENDS, default="openvino", help="what runs the network")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto")
    parser.add_argument("--address", default="127.0.0.1", help="gRPC address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8001, help="gRPC port (default 8001)")
    parser.add_argument("--http-port", type=int, default=8000, help="Triton's HTTP port, on 127.0.0.1 (8000)")
    parser.add_argument("--metrics-address", default="127.0.0.1", help="metrics address (default 127.0.0.1)")
    parser.add_argument("--metrics-port", type=int, default=8002, help="Triton's metrics port (default 8002)")
    parser.add_argument("--name", default="p2pnet", help="the model's name (default p2pnet)")
    parser.add_argument("--max-batch", type=int, default=DEFAULT_MAX_BATCH, help="largest batch (default 8)")
    parser.add_argument(
        "--queue-delay-us",
        type=int,
        default=DEFAULT_QUEUE_DELAY_US,
        help=f"longest a request waits for others to join its batch (default {DEFAULT_QUEUE_DELAY_US} µs)",
    )
    parser.add_argument("--instances", type=int, default=1, help="model instances (default 1)")
    parser.add_argument("--tls-cert", type=Path, help="server certificate (PEM) for gRPC over TLS")
    parser.add_argument("--tls-key", type=Path, help="server key (PEM)")
    parser.add_argument("--tls-client-ca", type=Path, help="CA of the boxes' certificates (mutual TLS)")
    return parser


def _is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def main(argv: list[str]) -> int:
    """Entry point of ``crowdwatch serve``; returns the exit code once stopped."""
    args = build_parser().parse_args(argv)
    for name in ("port", "http_port", "metrics_port"):
        if not 0 < getattr(args, name) < 65536:
            raise UsageError(f"--{name.replace('_', '-')} must be a port number (1-65535)")
    if args.max_batch < 1 or args.instances < 1 or args.queue_delay_us < 0:
        raise UsageError("--max-batch and --instances must be at least 1, --queue-delay-us at least 0")
    if (args.tls_cert is None) != (args.tls_key is None):
        raise UsageError("--tls-cert and --tls-key go together")
    if args.tls_client_ca is not None and args.tls_cert is None:
        raise UsageError("--tls-client-ca needs --tls-cert and --tls-key")
    if not _is_loopback(args.address) and args.tls_client_ca is None:
        raise UsageError(
            f"--address {args.address} is reachable beyond this machine: give --tls-cert, --tls-key and "
            "--tls-client-ca, so that only boxes holding a certificate from that CA can use the pool"
        )
    if not _is_loopback(args.metrics_address):
        raise UsageError("--metrics-address must be a loopback address (Triton's metrics have no login)")
    from crowdwatch.inference.triton_server import PoolModel, ServeSettings, serve

    settings = ServeSettings(
        address=args.address,
        grpc_port=args.port,
        http_port=args.http_port,
        metrics_port=args.metrics_port,
        metrics_address=args.metrics_address,
        name=args.name,
        max_batch=args.max_batch,
        queue_delay_us=args.queue_delay_us,
        instances=args.instances,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_client_ca=args.tls_client_ca,
    )
    model = PoolModel(args.weights, backend=args.backend, precision=args.precision)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    def ready() -> None:
        sys.stdout.write(f"READY grpc://{args.address}:{args.port}\n")
        sys.stdout.flush()

    serve(model, settings, stop, ready)
    return 0
