import { Type, type Static, type TSchema } from '@sinclair/typebox';
import type { ApiToken, Assignment, Job, LogChunk, NodeInfo, Queue, RunReport, StorageAlarm } from '../model/index.js';

/**
 * The shape of every record Titan stores, checked on every read: a record
 * written around Titan (etcdctl, a compromised node, an older or newer
 * version) is quarantined instead of reaching code that trusts the types.
 * Extra fields are allowed, so a newer version's additions are read, not
 * rejected. The interfaces in pkg/model stay the documented types; the
 * assertions at the end keep the two from drifting apart.
 */

const Str = Type.String();
const Num = Type.Number();
const Count = Type.Integer({ minimum: 0 });
const Port = Type.Integer({ minimum: 1, maximum: 65535 });
const StringMap = Type.Record(Type.String(), Type.String());
const opt = <T extends TSchema>(schema: T) => Type.Optional(schema);

export const ResourcesSchema = Type.Object({
  cpu: Type.Number({ minimum: 0 }),
  memory: Type.Number({ minimum: 0 }),
  gpuMilli: Type.Number({ minimum: 0 }),
});

const JobStateSchema = Type.Union([
  Type.Literal('Pending'),
  Type.Literal('Scheduled'),
  Type.Literal('Running'),
  Type.Literal('Succeeded'),
  Type.Literal('Failed'),
  Type.Literal('Cancelled'),
]);

const FailureKindSchema = Type.Union([
  Type.Literal('exit'),
  Type.Literal('timeout'),
  Type.Literal('lost-container'),
  Type.Literal('start-failed'),
  Type.Literal('node-lost'),
  Type.Literal('evicted'),
]);

const GangSchema = Type.Object({
  id: Str,
  rank: Count,
  size: Type.Integer({ minimum: 1 }),
  minAvailable: Type.Integer({ minimum: 1 }),
  topology: opt(Str),
});

const ArraySchema = Type.Object({
  id: Str,
  index: Count,
  count: Type.Integer({ minimum: 1 }),
  max: opt(Type.Integer({ minimum: 1 })),
});

const DependencySchema = Type.Object({
  condition: Type.Union([Type.Literal('ok'), Type.Literal('notok'), Type.Literal('any')]),
  jobs: Type.Array(Str),
});

const AttemptRecordSchema = Type.Object({
  attempt: Count,
  node: opt(Str),
  scheduledAt: opt(Num),
  startedAt: opt(Num),
  finishedAt: Num,
  exitCode: opt(Num),
  state: JobStateSchema,
  reason: opt(Str),
  failure: opt(FailureKindSchema),
  logBytes: opt(Count),
});

export const JobSchema = Type.Object({
  name: Str,
  kind: Type.Union([Type.Literal('docker'), Type.Literal('shell')]),
  image: opt(Str),
  command: Type.Array(Str),
  env: StringMap,
  resources: ResourcesSchema,
  priority: Num,
  labels: StringMap,
  retries: opt(Count),
  timeoutMs: opt(Num),
  gpuModels: opt(Type.Array(Str)),
  nodeSelector: opt(StringMap),
  queue: opt(Str),
  preemptible: opt(Type.Boolean()),
  minRuntimeMs: opt(Num),
  gang: opt(GangSchema),
  array: opt(ArraySchema),
  after: opt(Type.Array(DependencySchema)),
  id: Str,
  state: JobStateSchema,
  reason: opt(Str),
  reasonAt: opt(Num),
  createdAt: Num,
  scheduledAt: opt(Num),
  startedAt: opt(Num),
  finishedAt: opt(Num),
  node: opt(Str),
  gpuDevices: opt(Type.Array(Str)),
  attempt: Count,
  exitCode: opt(Num),
  cancelRequested: opt(Type.Boolean()),
  cancelReason: opt(Str),
  retryAt: opt(Num),
  history: opt(Type.Array(AttemptRecordSchema)),
  failureCount: opt(Count),
  nodeLostCount: opt(Count),
});

const GpuDeviceSchema = Type.Object({ index: Count, uuid: Str, model: Str, memory: Num });

export const NodeInfoSchema = Type.Object({
  id: Str,
  hostname: Str,
  capacity: ResourcesSchema,
  gpus: Type.Array(GpuDeviceSchema),
  labels: StringMap,
  executors: Type.Array(Type.Union([Type.Literal('docker'), Type.Literal('shell')])),
  registeredAt: Num,
  version: Str,
  instance: opt(Str),
  advertiseAddr: opt(Str),
  portRange: opt(Type.Object({ first: Port, last: Port })),
});

export const AssignmentSchema = Type.Object({
  jobId: Str,
  nodeId: Str,
  attempt: Count,
  resources: ResourcesSchema,
  gpuDevices: Type.Array(Str),
  assignedAt: Num,
  queue: opt(Str),
  priority: opt(Num),
  preemptible: opt(Type.Boolean()),
  minRuntimeMs: opt(Num),
  timeoutMs: opt(Num),
  gang: opt(Str),
  cancel: opt(Type.Object({ requestedAt: Num, graceMs: Num })),
  evict: opt(Type.Object({ requestedAt: Num, graceMs: Num, reason: Str })),
  peers: opt(Type.Array(Str)),
  port: opt(Port),
  rank: opt(Count),
  localRank: opt(Count),
  job: opt(Type.Uint8Array()),
});

const LogStreamSchema = Type.Union([Type.Literal('stdout'), Type.Literal('stderr')]);

export const LogChunkSchema = Type.Object({
  seq: Count,
  entries: Type.Array(Type.Object({ stream: LogStreamSchema, data: Str })),
  offsets: opt(Type.Object({ stdout: opt(Num), stderr: opt(Num) })),
});

export const QueueSchema = Type.Object({
  name: Str,
  parent: opt(Str),
  quota: ResourcesSchema,
  limit: opt(Type.Partial(ResourcesSchema)),
  weight: Num,
  createdAt: Num,
});

export const LeaderInfoSchema = Type.Object({
  id: Str,
  hostname: opt(Str),
  since: opt(Num),
  policy: opt(Str),
});

const RunEndSchema = Type.Union([
  Type.Object({ type: Type.Literal('exited'), exitCode: Type.Integer(), detail: opt(Str) }),
  Type.Object({ type: Type.Literal('lost'), reason: Str }),
  Type.Object({ type: Type.Literal('start-failed'), reason: Str }),
  Type.Object({ type: Type.Literal('node-lost'), reason: Str }),
  Type.Object({ type: Type.Literal('not-started') }),
]);

export const RunReportSchema = Type.Object({
  jobId: Str,
  attempt: Type.Integer({ minimum: 1 }),
  state: Type.Union([Type.Literal('Running'), Type.Literal('Ended')]),
  startedAt: opt(Num),
  end: opt(
    Type.Object({
      result: RunEndSchema,
      causes: Type.Object({ cancel: Type.Boolean(), timeout: Type.Boolean(), fenced: Type.Boolean(), worker: Type.Boolean(), evicted: opt(Str) }),
      finishedAt: Num,
      logBytes: opt(Count),
    }),
  ),
});

export const StorageAlarmSchema = Type.Object({ since: Num, dbSize: Num, dbSizeInUse: Num, quotaBytes: Num, nospace: Type.Boolean() });

export const LayoutSchema = Type.Object({
  version: Type.Integer({ minimum: 1 }),
  writtenAt: Num,
  writtenBy: Str,
});

export const ApiTokenSchema = Type.Object({
  id: Type.String({ pattern: '^[a-z0-9]{12}$' }),
  name: Str,
  role: Type.Union([Type.Literal('reader'), Type.Literal('submitter'), Type.Literal('operator'), Type.Literal('admin')]),
  queues: opt(Type.Array(Str)),
  hash: Type.String({ pattern: '^[0-9a-f]{64}$' }),
  createdAt: Num,
  expiresAt: opt(Num),
});

// ---- the schemas and the model's interfaces describe the same records ----------

/** Mutually assignable, with the same field names (assignability alone lets an optional field go missing). */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? ([keyof A] extends [keyof B] ? ([keyof B] extends [keyof A] ? true : false) : false) : false) : false;
function same<T extends true>(): T | undefined {
  return undefined;
}
same<Same<Static<typeof JobSchema>, Job>>();
same<Same<Static<typeof NodeInfoSchema>, NodeInfo>>();
same<Same<Static<typeof AssignmentSchema>, Assignment>>();
same<Same<Static<typeof LogChunkSchema>, LogChunk>>();
same<Same<Static<typeof QueueSchema>, Queue>>();
same<Same<Static<typeof RunReportSchema>, RunReport>>();
same<Same<Static<typeof StorageAlarmSchema>, StorageAlarm>>();
same<Same<Static<typeof ApiTokenSchema>, ApiToken>>();
