"""`residents:` the GPU pool and the model servers that take turns in it."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from hub.config.base import Section


class ProbeConfig(Section):
    url: str
    status: int = 200


SSH_CLIENT_HELP = ("ssh://: run the `ssh` program (its ~/.ssh/config, keys and agent); false: paramiko, "
                   "which must be installed")


class DockerTlsConfig(Section):
    """Client certificates for a Docker engine on tcp:// (`dockerd --tlsverify`), read from files."""

    ca_cert: str = Field(description="the CA that signed the engine's certificate (ca.pem)")
    client_cert: str = Field(description="this hub's client certificate (cert.pem)")
    client_key: str = Field(description="its key (key.pem)")
    verify: bool = Field(True, description="check the engine's certificate against ca_cert")


class DriverConfig(Section):
    type: Literal["docker", "process", "http_release"] = "docker"
    container: str | None = Field(None, description="container name; default: the resident's name")
    compose_service: str | None = None
    docker_host: str | None = Field(None, description="e.g. unix:///run/docker.sock; default: $DOCKER_HOST")
    tls: DockerTlsConfig | None = Field(None, description="client certificates for a tcp:// docker_host")
    use_ssh_client: bool = Field(True, description=SSH_CLIENT_HELP)
    command: list[str] = Field(default_factory=list)
    cwd: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    log_dir: str | None = Field(None, description="process: where its log and pid file go (default: "
                                                  "<data_dir>/residents); another disk keeps a full data disk "
                                                  "from touching the model servers")
    log_max_mb: float = Field(64, gt=0, description="process: rotate the log past this size")
    log_keep: int = Field(3, ge=0, le=100, description="process: rotated logs kept (<name>.log.1 ...)")
    release: Literal["sglang", "vllm", "comfyui"] | None = Field(
        None, description="http_release: which server's release/sleep API to use")

    @model_validator(mode="after")
    def needs_target(self) -> DriverConfig:
        if self.type == "process" and not self.command:
            raise ValueError("a process driver needs `command`")
        if self.type == "http_release" and not self.release:
            raise ValueError("an http_release driver needs `release: sglang|vllm|comfyui`")
        return self


class DropCachesConfig(Section):
    """A privileged helper that drops the page cache (`sync; echo 3 > /proc/sys/vm/drop_caches`).

    On unified memory MemAvailable counts page cache that CUDA may not get; NVIDIA's advice for the
    Spark is to drop it when allocations fail below the limit. The hub stays unprivileged: it starts
    a one-shot container (compose service `drop-caches`) or runs a command (e.g. a sudo rule)."""

    container: str | None = Field(None, description="one-shot privileged container to start and wait for")
    docker_host: str | None = Field(None, description="default: $DOCKER_HOST")
    command: list[str] = Field(default_factory=list, description="instead of a container, e.g. [sudo, -n, ...]")
    timeout_s: float = Field(60, gt=0)

    @model_validator(mode="after")
    def one_way(self) -> DropCachesConfig:
        if bool(self.container) == bool(self.command):
            raise ValueError("drop_caches needs exactly one of `container` or `command`")
        return self


class MemoryGuardConfig(Section):
    """After a stop, wait until memory is really back before the next start."""

    enabled: bool = True
    meminfo: str = "/proc/meminfo"
    command: list[str] = Field(default_factory=list, description="prints available GB; overrides meminfo")
    timeout_s: float = Field(180, gt=0)
    poll_s: float = Field(1.0, gt=0)
    drop_caches: DropCachesConfig | None = Field(None, description="run before measuring, before each start")


class ResidentConfig(Section):
    kind: Literal["llm", "image", "tts", "other"]
    memory_gb: float = Field(gt=0)
    base_url: str
    driver: DriverConfig = Field(default_factory=DriverConfig)
    ready: ProbeConfig
    warmup: bool = True
    start_timeout_s: float = Field(1800, gt=0)
    stall_timeout_s: float = Field(300, gt=0)
    stop_timeout_s: float = Field(60, gt=0)
    swap_seconds: float = Field(60, gt=0, description="initial guess; learned from measured swaps")
    concurrency: int | None = Field(None, ge=1, description="leases at once; default 8 for llm, else 1")
    default: bool = False
    pinned: bool = False
    ttl_s: float | None = Field(None, gt=0, description=(
        "unload after this long idle when nothing waits (the default then returns; a default with a "
        "ttl_s stays out until work asks for it)"))
    queue_limit: int | None = Field(None, ge=1, description=(
        "leases waiting for this resident above it are refused at once (429-style, with an ETA)"))
    exclusive: bool = Field(False, description=(
        "never resident together with another server, whatever the memory figures say (on the GB10, "
        "SGLang, ComfyUI with FLUX and vllm-omni each need the pool alone)"))
    nodes: list[str] = Field(default_factory=lambda: [LOCAL_NODE], min_length=1, description=(
        "the nodes (residents.nodes) this server may run on, in order of preference; default: the local one"))


LOCAL_NODE = "local"
ENDPOINT_SCHEMES = ("unix://", "ssh://", "tcp://", "npipe://")


class PoolConfig(Section):
    memory_gb: float = Field(128, gt=0)
    reserve_gb: float = Field(8, ge=0)


class NodeConfig(Section):
    """A machine whose Docker engine runs residents: its own memory pool, taken in turns."""

    docker_host: str | None = Field(None, description=(
        "its Docker engine: unix:///var/run/docker.sock, ssh://user@spark2, tcp://spark2:2376 (with `tls`); "
        "required but on the local node, whose engine is each resident's driver.docker_host ($DOCKER_HOST)"))
    tls: DockerTlsConfig | None = Field(None, description="client certificates for a tcp:// docker_host")
    use_ssh_client: bool = Field(True, description=SSH_CLIENT_HELP)
    host: str | None = Field(None, description=(
        "the host name its residents are reached at: replaces the host in each resident's base_url and "
        "ready.url (default: as configured)"))
    pool: PoolConfig = Field(default_factory=PoolConfig, description="its memory pool and reserve")
    memory_guard: MemoryGuardConfig | None = Field(None, description=(
        "default: residents.memory_guard on the local node, off on another (/proc/meminfo is this box's)"))
    check_interval_s: float = Field(5, gt=0, description="how often its engine is asked whether it answers")
    down_after_s: float = Field(15, gt=0, description=(
        "no answer for this long: its residents are down, its waiting jobs go to another node"))

    @model_validator(mode="after")
    def endpoint(self) -> NodeConfig:
        if self.docker_host is not None and not self.docker_host.startswith(ENDPOINT_SCHEMES):
            raise ValueError(f"docker_host {self.docker_host!r}: expected unix://PATH, ssh://[user@]host or "
                             "tcp://host:port")
        if self.tls is not None and not (self.docker_host or "").startswith("tcp://"):
            raise ValueError("tls applies to a tcp:// docker_host only")
        return self


class ResidentsConfig(Section):
    """`pool`, `max_wait_s`, `min_residency_s`, `lookahead`, `busy_timeout_s`, `anticipation_s`,
    `conversation_s`, `min_slice_s`, `monitor_interval_s`, `pin_max_s`, `preload_margin_s`, `memory_guard`
    and `nodes` are settings; every other key names a resident."""

    model_config = ConfigDict(extra="allow", validate_default=True)
    __pydantic_extra__: dict[str, ResidentConfig] = Field(init=False)

    pool: PoolConfig = Field(default_factory=PoolConfig)
    max_wait_s: dict[str, float] = Field(
        default_factory=lambda: {"interactive": 300, "skill": 1800, "scheduled": 7200})
    min_residency_s: float = Field(60, ge=0)
    lookahead: int = Field(6, ge=0, description="jobs that may overtake a queued swap")
    busy_timeout_s: float = Field(600, gt=0, description="past a job's estimate: the server counts as hung")
    anticipation_s: float = Field(15, ge=0, description="how long a pipeline's declared next step keeps its place")
    conversation_s: float = Field(120, ge=0, description="after a chat answer, its resident is kept this long "
                                  "for the conversation's next turn (against lower classes; 0: never)")
    min_slice_s: float = Field(30, ge=0, description="a lease with checkpoints (a podcast's speech) runs at "
                               "least this long before it may be asked to yield to a chat")
    monitor_interval_s: float = Field(5, gt=0, description="how often a ready resident is checked for life")
    pin_max_s: float = Field(4 * 3600, gt=0, description="the longest an operator may pin a resident")
    preload_margin_s: float = Field(30, ge=0, description="a scheduled job's resident is preloaded to be "
                                    "ready this long before the job's fire time")
    memory_guard: MemoryGuardConfig = Field(default_factory=MemoryGuardConfig)
    nodes: dict[str, NodeConfig] = Field(default_factory=dict, description=(
        "machines whose Docker engines run residents (one memory pool each); `local` is always there "
        "(pool and memory_guard above, unless configured here)"))

    @property
    def node_names(self) -> list[str]:
        """Every node in order: `local` first (implicit unless configured), then the configured ones."""
        return [LOCAL_NODE, *(n for n in self.nodes if n != LOCAL_NODE)]

    @property
    def multi_node(self) -> bool:
        """Whether any resident may run off the local node (one scheduler over several pools)."""
        return any(r.nodes != [LOCAL_NODE] for r in self.servers.values()) or bool(set(self.nodes) - {LOCAL_NODE})

    def node(self, name: str) -> NodeConfig:
        """A node's settings; the implicit local node has the residents' pool and memory guard."""
        if name in self.nodes:
            return self.nodes[name]
        if name == LOCAL_NODE:
            return NodeConfig(pool=self.pool, memory_guard=self.memory_guard)
        raise KeyError(name)

    @property
    def servers(self) -> dict[str, ResidentConfig]:
        return dict(self.__pydantic_extra__ or {})

    @property
    def default_resident(self) -> str | None:
        return next((name for name, r in self.servers.items() if r.default), None)

    @model_validator(mode="after")
    def one_default(self) -> ResidentsConfig:
        defaults = [name for name, r in self.servers.items() if r.default]
        if len(defaults) > 1:
            raise ValueError(f"only one resident may be the default, got {', '.join(defaults)}")
        for name, r in self.servers.items():
            if r.nodes == [LOCAL_NODE] and LOCAL_NODE not in self.nodes \
                    and r.memory_gb > self.pool.memory_gb - self.pool.reserve_gb:
                raise ValueError(f"{name}: memory_gb {r.memory_gb} exceeds the pool budget")
        self._check_nodes()
        self._check_holds()
        pinned = [name for name, r in self.servers.items() if r.pinned]
        for name, r in self.servers.items():
            others = [p for p in pinned if p != name]
            if r.exclusive and others:
                raise ValueError(f"{name} is exclusive but {', '.join(others)} is pinned: "
                                 f"{name} could never be loaded")
        return self

    def _check_holds(self) -> None:
        """A conversation hold must end before the bound of the work it holds back (else every skill
        or scheduled job behind a chat waited its whole bound), and a lease's minimum slice must leave
        a chat behind it time to be served."""
        chat = self.max_wait_s.get("interactive")
        lower = {c: w for c, w in self.max_wait_s.items() if c != "interactive"}
        if lower and self.conversation_s >= min(lower.values()):
            c = min(lower, key=lower.get)
            raise ValueError(f"conversation_s {self.conversation_s:g} must be shorter than max_wait_s.{c} "
                             f"({lower[c]:g}): a conversation would hold back {c} jobs for their whole bound")
        if chat is not None and self.min_slice_s >= chat:
            raise ValueError(f"min_slice_s {self.min_slice_s:g} must be shorter than max_wait_s.interactive "
                             f"({chat:g}): a chat behind a podcast could never be served in time")

    def _check_nodes(self) -> None:
        """Each resident's nodes exist, it fits each one's pool, and what must run on the hub's
        box (a process driver) stays on the local node."""
        known = self.node_names
        for n, nc in self.nodes.items():
            if n != LOCAL_NODE and not nc.docker_host:
                raise ValueError(f"node {n}: needs docker_host (ssh://user@host, tcp://host:2376 with tls, "
                                 "or unix://PATH)")
        for name, r in self.servers.items():
            if len(set(r.nodes)) != len(r.nodes):
                raise ValueError(f"{name}: nodes lists a node twice: {', '.join(r.nodes)}")
            for n in r.nodes:
                if n not in known:
                    raise ValueError(f"{name}: unknown node {n!r} (configured: {', '.join(known)}); "
                                     f"add it under residents.nodes")
                pool = self.node(n).pool
                if r.memory_gb > pool.memory_gb - pool.reserve_gb:
                    raise ValueError(f"{name}: memory_gb {r.memory_gb} exceeds the pool budget of node {n} "
                                     f"({pool.memory_gb:g} GB - {pool.reserve_gb:g} GB reserve)")
                if n != LOCAL_NODE and r.driver.type != "docker":
                    raise ValueError(f"{name}: a {r.driver.type} driver runs on the hub's own box; on node {n} "
                                     "only a docker driver (the node's engine) can start it")
