"""The official Python `kubernetes` client's streams against `cox server` with its agent: exec
(output, exit code, standard input, a terminal and its resize) over its WebSocket
(`v4.channel.k8s.io`), port-forward over
the WebSocket port-forward protocol, and logs. A pod `web` running nginx must exist.

Usage: streams.py KUBECONFIG. Prints "python streams: N passed, 0 failed" or raises."""

import json
import sys

from kubernetes import client, config
from kubernetes.stream import portforward, stream


def main(kubeconfig: str) -> None:
    config.load_kube_config(config_file=kubeconfig)
    core = client.CoreV1Api()
    checks = 0

    out = stream(core.connect_get_namespaced_pod_exec, "web", "default",
                 command=["cat", "/etc/hostname"], stderr=True, stdin=False, stdout=True, tty=False)
    assert out.strip() == "web", out
    checks += 1

    failing = stream(core.connect_get_namespaced_pod_exec, "web", "default",
                     command=["sh", "-c", "exit 3"], stderr=True, stdin=False, stdout=True, tty=False,
                     _preload_content=False)
    failing.run_forever(timeout=20)
    assert failing.returncode == 3, failing.returncode
    checks += 1

    reader = stream(core.connect_get_namespaced_pod_exec, "web", "default",
                    command=["sh", "-c", "read x; echo got=$x"], stderr=True, stdin=True, stdout=True,
                    tty=False, _preload_content=False)
    reader.write_stdin("hello\n")
    reader.run_forever(timeout=20)
    assert "got=hello" in reader.read_stdout(timeout=1) + "".join(reader.read_all()), "no echo"
    checks += 1

    # A terminal, resized by the client (channel 4) before the shell asks for its size.
    terminal = stream(core.connect_get_namespaced_pod_exec, "web", "default",
                      command=["sh", "-c", "read x; stty size"], stderr=True, stdin=True,
                      stdout=True, tty=True, _preload_content=False)
    terminal.write_channel(4, json.dumps({"Width": 100, "Height": 40}))
    terminal.write_stdin("go\n")
    terminal.run_forever(timeout=20)
    shown = terminal.read_stdout(timeout=1) + "".join(terminal.read_all())
    assert "40 100" in shown, repr(shown)
    checks += 1

    forward = portforward(core.connect_get_namespaced_pod_portforward, "web", "default", ports="80")
    sock = forward.socket(80)
    sock.setblocking(True)
    sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
    page = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            break
        page += chunk
    sock.close()
    assert b"Welcome to nginx!" in page, page
    assert forward.error(80) is None, forward.error(80)
    checks += 1

    # nginx logs each request on its standard output: the one just made through the forward.
    logs = core.read_namespaced_pod_log("web", "default", tail_lines=100)
    assert '"GET / HTTP/1.0" 200' in logs, logs
    checks += 1

    print(f"python streams: {checks} passed, 0 failed")


if __name__ == "__main__":
    main(sys.argv[1])
