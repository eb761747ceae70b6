from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AgentKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AGENT_KIND_UNSPECIFIED: _ClassVar[AgentKind]
    AGENT_KIND_NODE: _ClassVar[AgentKind]
    AGENT_KIND_VM: _ClassVar[AgentKind]

class Backend(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BACKEND_UNSPECIFIED: _ClassVar[Backend]
    BACKEND_GPU: _ClassVar[Backend]
    BACKEND_CPU: _ClassVar[Backend]
    BACKEND_SIMULATED: _ClassVar[Backend]

class ClientKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CLIENT_KIND_UNSPECIFIED: _ClassVar[ClientKind]
    CLIENT_KIND_ECS: _ClassVar[ClientKind]
    CLIENT_KIND_ECI: _ClassVar[ClientKind]

class InstanceStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INSTANCE_STATUS_UNSPECIFIED: _ClassVar[InstanceStatus]
    INSTANCE_STATUS_PENDING: _ClassVar[InstanceStatus]
    INSTANCE_STATUS_STARTING: _ClassVar[InstanceStatus]
    INSTANCE_STATUS_AVAILABLE: _ClassVar[InstanceStatus]
    INSTANCE_STATUS_ATTACHING: _ClassVar[InstanceStatus]
    INSTANCE_STATUS_IN_USE: _ClassVar[InstanceStatus]
    INSTANCE_STATUS_DETACHING: _ClassVar[InstanceStatus]
    INSTANCE_STATUS_UNAVAILABLE: _ClassVar[InstanceStatus]
    INSTANCE_STATUS_STOPPING: _ClassVar[InstanceStatus]
    INSTANCE_STATUS_STOPPED: _ClassVar[InstanceStatus]

class SliceRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SLICE_ROLE_UNSPECIFIED: _ClassVar[SliceRole]
    SLICE_ROLE_IDLE: _ClassVar[SliceRole]
    SLICE_ROLE_SERVE: _ClassVar[SliceRole]
    SLICE_ROLE_RELEASE: _ClassVar[SliceRole]

class SlicePhase(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SLICE_PHASE_UNSPECIFIED: _ClassVar[SlicePhase]
    SLICE_PHASE_PREPARING: _ClassVar[SlicePhase]
    SLICE_PHASE_READY: _ClassVar[SlicePhase]

class WorkerState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WORKER_STATE_UNSPECIFIED: _ClassVar[WorkerState]
    WORKER_STATE_NONE: _ClassVar[WorkerState]
    WORKER_STATE_STARTING: _ClassVar[WorkerState]
    WORKER_STATE_READY: _ClassVar[WorkerState]
    WORKER_STATE_FAILED: _ClassVar[WorkerState]
    WORKER_STATE_STOPPING: _ClassVar[WorkerState]

class ChannelState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANNEL_STATE_UNSPECIFIED: _ClassVar[ChannelState]
    CHANNEL_STATE_IDLE: _ClassVar[ChannelState]
    CHANNEL_STATE_OPENING: _ClassVar[ChannelState]
    CHANNEL_STATE_PROVEN: _ClassVar[ChannelState]
    CHANNEL_STATE_CLOSED: _ClassVar[ChannelState]
    CHANNEL_STATE_FAILED: _ClassVar[ChannelState]
    CHANNEL_STATE_BROKEN: _ClassVar[ChannelState]

class NotebookServerState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NOTEBOOK_SERVER_STATE_UNSPECIFIED: _ClassVar[NotebookServerState]
    NOTEBOOK_SERVER_STATE_NONE: _ClassVar[NotebookServerState]
    NOTEBOOK_SERVER_STATE_STARTING: _ClassVar[NotebookServerState]
    NOTEBOOK_SERVER_STATE_READY: _ClassVar[NotebookServerState]
    NOTEBOOK_SERVER_STATE_FAILED: _ClassVar[NotebookServerState]
AGENT_KIND_UNSPECIFIED: AgentKind
AGENT_KIND_NODE: AgentKind
AGENT_KIND_VM: AgentKind
BACKEND_UNSPECIFIED: Backend
BACKEND_GPU: Backend
BACKEND_CPU: Backend
BACKEND_SIMULATED: Backend
CLIENT_KIND_UNSPECIFIED: ClientKind
CLIENT_KIND_ECS: ClientKind
CLIENT_KIND_ECI: ClientKind
INSTANCE_STATUS_UNSPECIFIED: InstanceStatus
INSTANCE_STATUS_PENDING: InstanceStatus
INSTANCE_STATUS_STARTING: InstanceStatus
INSTANCE_STATUS_AVAILABLE: InstanceStatus
INSTANCE_STATUS_ATTACHING: InstanceStatus
INSTANCE_STATUS_IN_USE: InstanceStatus
INSTANCE_STATUS_DETACHING: InstanceStatus
INSTANCE_STATUS_UNAVAILABLE: InstanceStatus
INSTANCE_STATUS_STOPPING: InstanceStatus
INSTANCE_STATUS_STOPPED: InstanceStatus
SLICE_ROLE_UNSPECIFIED: SliceRole
SLICE_ROLE_IDLE: SliceRole
SLICE_ROLE_SERVE: SliceRole
SLICE_ROLE_RELEASE: SliceRole
SLICE_PHASE_UNSPECIFIED: SlicePhase
SLICE_PHASE_PREPARING: SlicePhase
SLICE_PHASE_READY: SlicePhase
WORKER_STATE_UNSPECIFIED: WorkerState
WORKER_STATE_NONE: WorkerState
WORKER_STATE_STARTING: WorkerState
WORKER_STATE_READY: WorkerState
WORKER_STATE_FAILED: WorkerState
WORKER_STATE_STOPPING: WorkerState
CHANNEL_STATE_UNSPECIFIED: ChannelState
CHANNEL_STATE_IDLE: ChannelState
CHANNEL_STATE_OPENING: ChannelState
CHANNEL_STATE_PROVEN: ChannelState
CHANNEL_STATE_CLOSED: ChannelState
CHANNEL_STATE_FAILED: ChannelState
CHANNEL_STATE_BROKEN: ChannelState
NOTEBOOK_SERVER_STATE_UNSPECIFIED: NotebookServerState
NOTEBOOK_SERVER_STATE_NONE: NotebookServerState
NOTEBOOK_SERVER_STATE_STARTING: NotebookServerState
NOTEBOOK_SERVER_STATE_READY: NotebookServerState
NOTEBOOK_SERVER_STATE_FAILED: NotebookServerState

class SliceOffer(_message.Message):
    __slots__ = ("local_id", "instance_type", "gpu_index", "memory_mib")
    LOCAL_ID_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    GPU_INDEX_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    local_id: str
    instance_type: str
    gpu_index: int
    memory_mib: int
    def __init__(self, local_id: _Optional[str] = ..., instance_type: _Optional[str] = ..., gpu_index: _Optional[int] = ..., memory_mib: _Optional[int] = ...) -> None: ...

class NodeRegistration(_message.Message):
    __slots__ = ("node_id", "hostname", "region_id", "zone_id", "gateway_address", "backend", "accelerator_model", "tf_version", "slices", "gateway_csr_pem")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    REGION_ID_FIELD_NUMBER: _ClassVar[int]
    ZONE_ID_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    ACCELERATOR_MODEL_FIELD_NUMBER: _ClassVar[int]
    TF_VERSION_FIELD_NUMBER: _ClassVar[int]
    SLICES_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_CSR_PEM_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    hostname: str
    region_id: str
    zone_id: str
    gateway_address: str
    backend: Backend
    accelerator_model: str
    tf_version: str
    slices: _containers.RepeatedCompositeFieldContainer[SliceOffer]
    gateway_csr_pem: str
    def __init__(self, node_id: _Optional[str] = ..., hostname: _Optional[str] = ..., region_id: _Optional[str] = ..., zone_id: _Optional[str] = ..., gateway_address: _Optional[str] = ..., backend: _Optional[_Union[Backend, str]] = ..., accelerator_model: _Optional[str] = ..., tf_version: _Optional[str] = ..., slices: _Optional[_Iterable[_Union[SliceOffer, _Mapping]]] = ..., gateway_csr_pem: _Optional[str] = ...) -> None: ...

class VmRegistration(_message.Message):
    __slots__ = ("client_instance_id", "region_id", "zone_id", "vpc_id", "vswitch_id", "kind", "name", "instance_type", "vcpu", "memory_mib", "tf_endpoint")
    CLIENT_INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    REGION_ID_FIELD_NUMBER: _ClassVar[int]
    ZONE_ID_FIELD_NUMBER: _ClassVar[int]
    VPC_ID_FIELD_NUMBER: _ClassVar[int]
    VSWITCH_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    VCPU_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    TF_ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    client_instance_id: str
    region_id: str
    zone_id: str
    vpc_id: str
    vswitch_id: str
    kind: ClientKind
    name: str
    instance_type: str
    vcpu: int
    memory_mib: int
    tf_endpoint: str
    def __init__(self, client_instance_id: _Optional[str] = ..., region_id: _Optional[str] = ..., zone_id: _Optional[str] = ..., vpc_id: _Optional[str] = ..., vswitch_id: _Optional[str] = ..., kind: _Optional[_Union[ClientKind, str]] = ..., name: _Optional[str] = ..., instance_type: _Optional[str] = ..., vcpu: _Optional[int] = ..., memory_mib: _Optional[int] = ..., tf_endpoint: _Optional[str] = ...) -> None: ...

class RegisterRequest(_message.Message):
    __slots__ = ("node", "vm")
    NODE_FIELD_NUMBER: _ClassVar[int]
    VM_FIELD_NUMBER: _ClassVar[int]
    node: NodeRegistration
    vm: VmRegistration
    def __init__(self, node: _Optional[_Union[NodeRegistration, _Mapping]] = ..., vm: _Optional[_Union[VmRegistration, _Mapping]] = ...) -> None: ...

class HeartbeatDeadline(_message.Message):
    __slots__ = ("deadline_us", "beat_within_ms")
    DEADLINE_US_FIELD_NUMBER: _ClassVar[int]
    BEAT_WITHIN_MS_FIELD_NUMBER: _ClassVar[int]
    deadline_us: int
    beat_within_ms: int
    def __init__(self, deadline_us: _Optional[int] = ..., beat_within_ms: _Optional[int] = ...) -> None: ...

class RegisterResponse(_message.Message):
    __slots__ = ("session_token", "agent_id", "agent_kind", "heartbeat", "server_time_us", "gateway_certificate_pem", "ca_certificate_pem")
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_KIND_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    SERVER_TIME_US_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_CERTIFICATE_PEM_FIELD_NUMBER: _ClassVar[int]
    CA_CERTIFICATE_PEM_FIELD_NUMBER: _ClassVar[int]
    session_token: str
    agent_id: str
    agent_kind: AgentKind
    heartbeat: HeartbeatDeadline
    server_time_us: int
    gateway_certificate_pem: str
    ca_certificate_pem: str
    def __init__(self, session_token: _Optional[str] = ..., agent_id: _Optional[str] = ..., agent_kind: _Optional[_Union[AgentKind, str]] = ..., heartbeat: _Optional[_Union[HeartbeatDeadline, _Mapping]] = ..., server_time_us: _Optional[int] = ..., gateway_certificate_pem: _Optional[str] = ..., ca_certificate_pem: _Optional[str] = ...) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HeartbeatResponse(_message.Message):
    __slots__ = ("heartbeat",)
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    heartbeat: HeartbeatDeadline
    def __init__(self, heartbeat: _Optional[_Union[HeartbeatDeadline, _Mapping]] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DesiredState(_message.Message):
    __slots__ = ("generated_us", "node", "vm")
    GENERATED_US_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    VM_FIELD_NUMBER: _ClassVar[int]
    generated_us: int
    node: NodeDesiredState
    vm: VmDesiredState
    def __init__(self, generated_us: _Optional[int] = ..., node: _Optional[_Union[NodeDesiredState, _Mapping]] = ..., vm: _Optional[_Union[VmDesiredState, _Mapping]] = ...) -> None: ...

class NodeDesiredState(_message.Message):
    __slots__ = ("node_id", "slices")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    SLICES_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    slices: _containers.RepeatedCompositeFieldContainer[SliceDesiredState]
    def __init__(self, node_id: _Optional[str] = ..., slices: _Optional[_Iterable[_Union[SliceDesiredState, _Mapping]]] = ...) -> None: ...

class SliceDesiredState(_message.Message):
    __slots__ = ("slice_id", "local_id", "instance_type", "gpu_index", "memory_mib", "role", "instance", "attachment")
    SLICE_ID_FIELD_NUMBER: _ClassVar[int]
    LOCAL_ID_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    GPU_INDEX_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENT_FIELD_NUMBER: _ClassVar[int]
    slice_id: str
    local_id: str
    instance_type: str
    gpu_index: int
    memory_mib: int
    role: SliceRole
    instance: AssignedInstance
    attachment: NodeAttachment
    def __init__(self, slice_id: _Optional[str] = ..., local_id: _Optional[str] = ..., instance_type: _Optional[str] = ..., gpu_index: _Optional[int] = ..., memory_mib: _Optional[int] = ..., role: _Optional[_Union[SliceRole, str]] = ..., instance: _Optional[_Union[AssignedInstance, _Mapping]] = ..., attachment: _Optional[_Union[NodeAttachment, _Mapping]] = ...) -> None: ...

class AssignedInstance(_message.Message):
    __slots__ = ("instance_id", "instance_type", "status")
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    instance_id: str
    instance_type: str
    status: InstanceStatus
    def __init__(self, instance_id: _Optional[str] = ..., instance_type: _Optional[str] = ..., status: _Optional[_Union[InstanceStatus, str]] = ...) -> None: ...

class NodeAttachment(_message.Message):
    __slots__ = ("attachment_id", "attachment_token", "client_instance_id")
    ATTACHMENT_ID_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CLIENT_INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    attachment_id: str
    attachment_token: str
    client_instance_id: str
    def __init__(self, attachment_id: _Optional[str] = ..., attachment_token: _Optional[str] = ..., client_instance_id: _Optional[str] = ...) -> None: ...

class VmDesiredState(_message.Message):
    __slots__ = ("client_instance_id", "attachment", "notebooks")
    CLIENT_INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENT_FIELD_NUMBER: _ClassVar[int]
    NOTEBOOKS_FIELD_NUMBER: _ClassVar[int]
    client_instance_id: str
    attachment: VmAttachment
    notebooks: _containers.RepeatedCompositeFieldContainer[VmNotebook]
    def __init__(self, client_instance_id: _Optional[str] = ..., attachment: _Optional[_Union[VmAttachment, _Mapping]] = ..., notebooks: _Optional[_Iterable[_Union[VmNotebook, _Mapping]]] = ...) -> None: ...

class EnvironmentVariable(_message.Message):
    __slots__ = ("key", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: str
    def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class VmNotebook(_message.Message):
    __slots__ = ("instance_id", "serve", "token", "environment", "attachment_id")
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    SERVE_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENT_ID_FIELD_NUMBER: _ClassVar[int]
    instance_id: str
    serve: bool
    token: str
    environment: _containers.RepeatedCompositeFieldContainer[EnvironmentVariable]
    attachment_id: str
    def __init__(self, instance_id: _Optional[str] = ..., serve: bool = ..., token: _Optional[str] = ..., environment: _Optional[_Iterable[_Union[EnvironmentVariable, _Mapping]]] = ..., attachment_id: _Optional[str] = ...) -> None: ...

class VmAttachment(_message.Message):
    __slots__ = ("instance_id", "instance_type", "status", "node_gateway_address", "attachment_id", "attachment_token", "node_tf_version")
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    NODE_GATEWAY_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENT_ID_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    NODE_TF_VERSION_FIELD_NUMBER: _ClassVar[int]
    instance_id: str
    instance_type: str
    status: InstanceStatus
    node_gateway_address: str
    attachment_id: str
    attachment_token: str
    node_tf_version: str
    def __init__(self, instance_id: _Optional[str] = ..., instance_type: _Optional[str] = ..., status: _Optional[_Union[InstanceStatus, str]] = ..., node_gateway_address: _Optional[str] = ..., attachment_id: _Optional[str] = ..., attachment_token: _Optional[str] = ..., node_tf_version: _Optional[str] = ...) -> None: ...

class SliceUsage(_message.Message):
    __slots__ = ("gpu_core_usage_percent", "gpu_memory_usage_percent", "memory_used_mib", "cpu_usage_percent", "memory_usage_percent")
    GPU_CORE_USAGE_PERCENT_FIELD_NUMBER: _ClassVar[int]
    GPU_MEMORY_USAGE_PERCENT_FIELD_NUMBER: _ClassVar[int]
    MEMORY_USED_MIB_FIELD_NUMBER: _ClassVar[int]
    CPU_USAGE_PERCENT_FIELD_NUMBER: _ClassVar[int]
    MEMORY_USAGE_PERCENT_FIELD_NUMBER: _ClassVar[int]
    gpu_core_usage_percent: float
    gpu_memory_usage_percent: float
    memory_used_mib: int
    cpu_usage_percent: float
    memory_usage_percent: float
    def __init__(self, gpu_core_usage_percent: _Optional[float] = ..., gpu_memory_usage_percent: _Optional[float] = ..., memory_used_mib: _Optional[int] = ..., cpu_usage_percent: _Optional[float] = ..., memory_usage_percent: _Optional[float] = ...) -> None: ...

class SliceActualState(_message.Message):
    __slots__ = ("slice_id", "phase", "worker", "attachment_id", "memory_free", "failure_reason", "usage", "instance_id")
    SLICE_ID_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    WORKER_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENT_ID_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FREE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    slice_id: str
    phase: SlicePhase
    worker: WorkerState
    attachment_id: str
    memory_free: bool
    failure_reason: str
    usage: SliceUsage
    instance_id: str
    def __init__(self, slice_id: _Optional[str] = ..., phase: _Optional[_Union[SlicePhase, str]] = ..., worker: _Optional[_Union[WorkerState, str]] = ..., attachment_id: _Optional[str] = ..., memory_free: bool = ..., failure_reason: _Optional[str] = ..., usage: _Optional[_Union[SliceUsage, _Mapping]] = ..., instance_id: _Optional[str] = ...) -> None: ...

class NodeActualState(_message.Message):
    __slots__ = ("slices",)
    SLICES_FIELD_NUMBER: _ClassVar[int]
    slices: _containers.RepeatedCompositeFieldContainer[SliceActualState]
    def __init__(self, slices: _Optional[_Iterable[_Union[SliceActualState, _Mapping]]] = ...) -> None: ...

class VmActualState(_message.Message):
    __slots__ = ("attachment_id", "channel", "failure_reason", "round_trip_us", "notebooks")
    ATTACHMENT_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    ROUND_TRIP_US_FIELD_NUMBER: _ClassVar[int]
    NOTEBOOKS_FIELD_NUMBER: _ClassVar[int]
    attachment_id: str
    channel: ChannelState
    failure_reason: str
    round_trip_us: int
    notebooks: _containers.RepeatedCompositeFieldContainer[NotebookActualState]
    def __init__(self, attachment_id: _Optional[str] = ..., channel: _Optional[_Union[ChannelState, str]] = ..., failure_reason: _Optional[str] = ..., round_trip_us: _Optional[int] = ..., notebooks: _Optional[_Iterable[_Union[NotebookActualState, _Mapping]]] = ...) -> None: ...

class NotebookActualState(_message.Message):
    __slots__ = ("instance_id", "state", "url", "failure_reason", "attachment_id")
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENT_ID_FIELD_NUMBER: _ClassVar[int]
    instance_id: str
    state: NotebookServerState
    url: str
    failure_reason: str
    attachment_id: str
    def __init__(self, instance_id: _Optional[str] = ..., state: _Optional[_Union[NotebookServerState, str]] = ..., url: _Optional[str] = ..., failure_reason: _Optional[str] = ..., attachment_id: _Optional[str] = ...) -> None: ...

class ActualStateReport(_message.Message):
    __slots__ = ("observed_us", "node", "vm")
    OBSERVED_US_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    VM_FIELD_NUMBER: _ClassVar[int]
    observed_us: int
    node: NodeActualState
    vm: VmActualState
    def __init__(self, observed_us: _Optional[int] = ..., node: _Optional[_Union[NodeActualState, _Mapping]] = ..., vm: _Optional[_Union[VmActualState, _Mapping]] = ...) -> None: ...

class ReportAck(_message.Message):
    __slots__ = ("transitions_applied", "notes")
    TRANSITIONS_APPLIED_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    transitions_applied: int
    notes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, transitions_applied: _Optional[int] = ..., notes: _Optional[_Iterable[str]] = ...) -> None: ...
