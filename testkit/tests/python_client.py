"""The official Kubernetes Python client against the fake API server: what a native client
does, checked by code nobody here wrote. Run by python_client.rs as

    python python_client.py KUBECONFIG CONTROL_ADDR INSTANCE

where the kubeconfig is the one the server wrote (https with its test CA, a token from its exec
credential plugin) and CONTROL_ADDR is HOST:PORT for its /_control endpoints (plain HTTP).
Prints `ok: CHECK` for each check that passed; any failure raises, and the exit code says so.
"""

import json
import os
import queue
import re
import sys
import threading
import time
import urllib.request

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException
from kubernetes.stream import portforward, stream

KUBECONFIG, CONTROL, INSTANCE = sys.argv[1:4]
NS = "e2e"
SELECTOR = "app=db-proxy"
DEADLINE = 20  # seconds any one wait may take


def control(path):
    with urllib.request.urlopen(f"http://{CONTROL}/_control/{path}", timeout=10) as resp:
        return json.load(resp)


def wait_for(what, check):
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def ok(check):
    print(f"ok: {check}", flush=True)


def ready(pod):
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def recv_exactly(sock, n):
    got = b""
    while len(got) < n:
        chunk = sock.recv(1 << 16)
        if not chunk:
            break
        got += chunk
    return got


config.load_kube_config(config_file=KUBECONFIG, context="e2e")
v1 = client.CoreV1Api()
calls = KUBECONFIG + ".plugin-calls"

# List: over TLS verified against the kubeconfig's CA, with the plugin's token.
pods = v1.list_namespaced_pod(NS, label_selector=SELECTOR)
assert len(pods.items) == 1, pods
pod = pods.items[0]
assert pod.status.phase == "Running" and ready(pod), pod.status
assert pods.metadata.resource_version, pods.metadata
assert os.path.exists(calls), "the exec credential plugin never ran"
ok("list pods over TLS with the exec plugin's token")

# A wrong token is refused, as by a real API server.
wrong = client.Configuration.get_default_copy()
wrong.api_key = {"authorization": "Bearer not-the-token"}
wrong.refresh_api_key_hook = None  # else the exec plugin's token comes back
try:
    client.CoreV1Api(client.ApiClient(wrong)).list_namespaced_pod(NS)
    raise AssertionError("a wrong token was accepted")
except ApiException as e:
    assert e.status == 401, e
ok("a wrong token gets 401")

# Exec over WebSocket: the connect command starts the proxy and prints its port.
out = stream(v1.connect_get_namespaced_pod_exec, pod.metadata.name, NS,
             command=["/connect.sh", INSTANCE], stderr=True, stdin=False, stdout=True, tty=False)
m = re.search(r"Listening on 127\.0\.0\.1:(\d+)", out)
assert m, out
port = int(m.group(1))
proc = stream(v1.connect_get_namespaced_pod_exec, pod.metadata.name, NS, command=["ls", "-l"],
              stderr=True, stdin=False, stdout=True, tty=False, _preload_content=False)
proc.run_forever(timeout=DEADLINE)
assert proc.returncode == 127, proc.returncode
assert "unknown command" in proc.read_stderr(), "stderr of the failed command"
ok("exec over WebSocket: output, exit codes")

# Port-forward over WebSocket: bytes through to the proxy (an echo server behind it).
payload = os.urandom(512 * 1024)
pf = portforward(v1.connect_get_namespaced_pod_portforward, pod.metadata.name, NS, ports=str(port))
sock = pf.socket(port)
sock.settimeout(DEADLINE)
sender = threading.Thread(target=sock.sendall, args=(payload,))
sender.start()
back = recv_exactly(sock, len(payload))
sender.join()
assert back == payload, f"{len(back)} of {len(payload)} bytes came back"
sock.close()
assert pf.error(port) is None, pf.error(port)
ok("port-forward over WebSocket: 512 KiB echoed byte-exact")

# A port where nothing listens: the kubelet's error on the port's error channel.
dead = port + 1 if port < 65535 else port - 1
pf = portforward(v1.connect_get_namespaced_pod_portforward, pod.metadata.name, NS, ports=str(dead))
err = wait_for("the error of a dead port", lambda: pf.error(dead))
assert f"failed to connect to localhost:{dead}" in err, err
ok("port-forward to a dead port reports the kubelet's error")

# fail-stream fails one connection with a message while another is mid-transfer.
first = portforward(v1.connect_get_namespaced_pod_portforward, pod.metadata.name, NS, ports=str(port))
second = portforward(v1.connect_get_namespaced_pod_portforward, pod.metadata.name, NS, ports=str(port))
a, b = first.socket(port), second.socket(port)
for s in (a, b):
    s.settimeout(DEADLINE)
    s.sendall(b"half way ")
    assert recv_exactly(s, 9) == b"half way ", "the first half's echo"
wait_for("both forwards open", lambda: len(control("state")["forwards"]) >= 2)
failed = control("fail-stream?message=boom")  # the newest: the second
assert failed["ok"], failed
assert wait_for("the second's error", lambda: second.error(port)) == "boom"
a.sendall(b"and the rest")
assert recv_exactly(a, 12) == b"and the rest", "the first goes on after the second failed"
assert first.error(port) is None
a.close()
b.close()
ok("fail-stream fails one connection, the other goes on")

# Watch, with resource versions: not Ready (MODIFIED), then a new pod (DELETED, ADDED).
rv = v1.list_namespaced_pod(NS, label_selector=SELECTOR).metadata.resource_version
events = queue.Queue()
w = watch.Watch()


def watcher():
    for e in w.stream(v1.list_namespaced_pod, NS, label_selector=SELECTOR, resource_version=rv,
                      timeout_seconds=DEADLINE):
        events.put(e)


threading.Thread(target=watcher, daemon=True).start()
wait_for("the watch to open", lambda: control("state")["watches"] >= 1)
control("pod-ready?ready=false")
e = events.get(timeout=DEADLINE)
assert e["type"] == "MODIFIED" and not ready(e["object"]), e
assert int(e["object"].metadata.resource_version) > int(rv)
new = control("replace-pod")["pod"]
e = events.get(timeout=DEADLINE)
assert e["type"] == "DELETED" and e["object"].metadata.name == pod.metadata.name, e
e = events.get(timeout=DEADLINE)
assert e["type"] == "ADDED" and e["object"].metadata.name == new and ready(e["object"]), e
w.stop()
ok("watch from a resource version: MODIFIED, DELETED, ADDED")

# The new pod has no proxy: the connect command starts one on a new port.
out = stream(v1.connect_get_namespaced_pod_exec, new, NS, command=["/connect.sh", INSTANCE],
             stderr=True, stdin=False, stdout=True, tty=False)
new_port = int(re.search(r"Listening on 127\.0\.0\.1:(\d+)", out).group(1))
assert new_port != port, "the new pod's proxy has a new port"
pf = portforward(v1.connect_get_namespaced_pod_portforward, new, NS, ports=str(new_port))
s = pf.socket(new_port)
s.settimeout(DEADLINE)
s.sendall(b"new pod")
assert recv_exactly(s, 7) == b"new pod"
s.close()
ok("a new pod, a new proxy port, bytes through it")

# A version older than the kept history: 410 Gone, as after a real server's compaction.
control("compact")
resp = v1.list_namespaced_pod(NS, watch=True, resource_version=rv, _preload_content=False,
                              timeout_seconds=DEADLINE)
first_line = json.loads(resp.readline())
resp.close()
assert first_line["type"] == "ERROR" and first_line["object"]["code"] == 410, first_line
ok("watch from a compacted version gets 410 Gone")
