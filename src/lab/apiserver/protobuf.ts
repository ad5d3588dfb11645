/**
 * Decoding the Kubernetes protobuf request bodies kubectl sends for `create
 * deployment|service|configmap|secret|namespace` and `run`
 * (Content-Type application/vnd.kubernetes.protobuf): the envelope is the
 * magic `k8s\0` then a runtime.Unknown (1 typeMeta {1 apiVersion, 2 kind},
 * 2 raw, 3 contentEncoding, 4 contentType) whose `raw` is the object in the
 * wire format of k8s.io/api's generated.proto. Only the fields of the kinds
 * below are known (field numbers from those .proto files); a field outside
 * them is refused with 415 naming it, never dropped.
 */
import { ApiError, failure } from '../../k8s/status.js';
import type { KubeObject } from '../../k8s/objects.js';

/** The four bytes every Kubernetes protobuf body starts with. */
export const PROTOBUF_MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

type Scalar = 'string' | 'int' | 'bool' | 'bytes' | 'time';
type FieldType = Scalar | Schema | { map: Scalar | Schema } | 'intstr';
/**
 * field number -> [JSON name, type, repeated?, keepZero?]. A zero scalar
 * (0, false, "") is dropped as JSON's omitempty would, unless keepZero (the
 * pointer fields Go writes only when set, such as replicas).
 */
interface Schema {
  name: string;
  fields: Record<number, [string, FieldType, boolean?, boolean?]>;
}

const S = (name: string, fields: Schema['fields']): Schema => ({ name, fields });

const OWNER_REF = S('OwnerReference', {
  1: ['kind', 'string'],
  3: ['name', 'string'],
  4: ['uid', 'string'],
  5: ['apiVersion', 'string'],
  6: ['controller', 'bool'],
  7: ['blockOwnerDeletion', 'bool'],
});
const OBJECT_META = S('ObjectMeta', {
  1: ['name', 'string'],
  2: ['generateName', 'string'],
  3: ['namespace', 'string'],
  5: ['uid', 'string'],
  6: ['resourceVersion', 'string'],
  7: ['generation', 'int'],
  8: ['creationTimestamp', 'time'],
  11: ['labels', { map: 'string' }],
  12: ['annotations', { map: 'string' }],
  13: ['ownerReferences', OWNER_REF, true],
  14: ['finalizers', 'string', true],
});
const SELECTOR_REQ = S('LabelSelectorRequirement', {
  1: ['key', 'string'],
  2: ['operator', 'string'],
  3: ['values', 'string', true],
});
const LABEL_SELECTOR = S('LabelSelector', {
  1: ['matchLabels', { map: 'string' }],
  2: ['matchExpressions', SELECTOR_REQ, true],
});
const QUANTITY = S('Quantity', { 1: ['string', 'string'] });
const CONTAINER_PORT = S('ContainerPort', {
  1: ['name', 'string'],
  2: ['hostPort', 'int'],
  3: ['containerPort', 'int'],
  4: ['protocol', 'string'],
  5: ['hostIP', 'string'],
});
const ENV_VAR = S('EnvVar', { 1: ['name', 'string'], 2: ['value', 'string'] });
const RESOURCES = S('ResourceRequirements', {
  1: ['limits', { map: QUANTITY }],
  2: ['requests', { map: QUANTITY }],
});
const CONTAINER = S('Container', {
  1: ['name', 'string'],
  2: ['image', 'string'],
  3: ['command', 'string', true],
  4: ['args', 'string', true],
  5: ['workingDir', 'string'],
  6: ['ports', CONTAINER_PORT, true],
  7: ['env', ENV_VAR, true],
  8: ['resources', RESOURCES],
  13: ['terminationMessagePath', 'string'],
  14: ['imagePullPolicy', 'string'],
  16: ['stdin', 'bool'],
  17: ['stdinOnce', 'bool'],
  18: ['tty', 'bool'],
  20: ['terminationMessagePolicy', 'string'],
});
const POD_SPEC = S('PodSpec', {
  2: ['containers', CONTAINER, true],
  3: ['restartPolicy', 'string'],
  4: ['terminationGracePeriodSeconds', 'int', false, true],
  6: ['dnsPolicy', 'string'],
  7: ['nodeSelector', { map: 'string' }],
  8: ['serviceAccountName', 'string'],
  10: ['nodeName', 'string'],
  11: ['hostNetwork', 'bool'],
  16: ['hostname', 'string'],
  19: ['schedulerName', 'string'],
  20: ['initContainers', CONTAINER, true],
});
const EMPTY = (name: string) => S(name, {});
const POD_TEMPLATE = S('PodTemplateSpec', { 1: ['metadata', OBJECT_META], 2: ['spec', POD_SPEC] });
const POD = S('Pod', {
  1: ['metadata', OBJECT_META],
  2: ['spec', POD_SPEC],
  3: ['status', EMPTY('PodStatus')],
});
const ROLLING = S('RollingUpdateDeployment', {
  1: ['maxUnavailable', 'intstr'],
  2: ['maxSurge', 'intstr'],
});
const DEPLOYMENT = S('Deployment', {
  1: ['metadata', OBJECT_META],
  2: [
    'spec',
    S('DeploymentSpec', {
      1: ['replicas', 'int', false, true],
      2: ['selector', LABEL_SELECTOR],
      3: ['template', POD_TEMPLATE],
      4: [
        'strategy',
        S('DeploymentStrategy', { 1: ['type', 'string'], 2: ['rollingUpdate', ROLLING] }),
      ],
      5: ['minReadySeconds', 'int'],
      6: ['revisionHistoryLimit', 'int'],
      7: ['paused', 'bool'],
      9: ['progressDeadlineSeconds', 'int'],
    }),
  ],
  3: ['status', EMPTY('DeploymentStatus')],
});
const SERVICE_PORT = S('ServicePort', {
  1: ['name', 'string'],
  2: ['protocol', 'string'],
  3: ['port', 'int'],
  4: ['targetPort', 'intstr'],
  5: ['nodePort', 'int'],
  6: ['appProtocol', 'string'],
});
const SERVICE = S('Service', {
  1: ['metadata', OBJECT_META],
  2: [
    'spec',
    S('ServiceSpec', {
      1: ['ports', SERVICE_PORT, true],
      2: ['selector', { map: 'string' }],
      3: ['clusterIP', 'string'],
      4: ['type', 'string'],
      5: ['externalIPs', 'string', true],
      7: ['sessionAffinity', 'string'],
      10: ['externalName', 'string'],
      18: ['clusterIPs', 'string', true],
    }),
  ],
  3: ['status', S('ServiceStatus', { 1: ['loadBalancer', EMPTY('LoadBalancerStatus')] })],
});
const CONFIGMAP = S('ConfigMap', {
  1: ['metadata', OBJECT_META],
  2: ['data', { map: 'string' }],
  3: ['binaryData', { map: 'bytes' }],
  4: ['immutable', 'bool', false, true],
});
const SECRET = S('Secret', {
  1: ['metadata', OBJECT_META],
  2: ['data', { map: 'bytes' }],
  3: ['type', 'string'],
  4: ['stringData', { map: 'string' }],
  5: ['immutable', 'bool'],
});
const NAMESPACE = S('Namespace', {
  1: ['metadata', OBJECT_META],
  2: ['spec', S('NamespaceSpec', { 1: ['finalizers', 'string', true] })],
  3: ['status', EMPTY('NamespaceStatus')],
});

/** The kinds decoded, by "apiVersion/kind". */
const KINDS: Record<string, Schema> = {
  'apps/v1/Deployment': DEPLOYMENT,
  'v1/Pod': POD,
  'v1/Service': SERVICE,
  'v1/ConfigMap': CONFIGMAP,
  'v1/Secret': SECRET,
  'v1/Namespace': NAMESPACE,
};

function unsupported(message: string): ApiError {
  return new ApiError(
    failure(
      415,
      'UnsupportedMediaType',
      `${message}; the lab API server decodes protobuf only for Deployments, Pods, Services, ConfigMaps, Secrets and Namespaces (what kubectl create/run send): send JSON (e.g. kubectl apply -f) for the rest`,
    ),
  );
}

/** A field as read off the wire: varint (as bigint) or length-delimited bytes. */
type Raw = { n: number; wire: 0 | 2; v: bigint | Buffer };

function readVarint(b: Buffer, at: number): [bigint, number] {
  let out = 0n;
  let shift = 0n;
  for (let i = at; i < b.length && i < at + 10; i++) {
    const byte = b[i]!;
    out |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return [out, i + 1];
    shift += 7n;
  }
  throw unsupported('a protobuf varint is truncated');
}

/** Splits a message into its fields (wire types 0 and 2; 1 and 5 are not used by these kinds). */
export function readFields(b: Buffer): Raw[] {
  const out: Raw[] = [];
  let at = 0;
  while (at < b.length) {
    const [key, next] = readVarint(b, at);
    at = next;
    const n = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (wire === 0) {
      const [v, after] = readVarint(b, at);
      out.push({ n, wire: 0, v });
      at = after;
    } else if (wire === 2) {
      const [len, after] = readVarint(b, at);
      const end = after + Number(len);
      if (end > b.length) throw unsupported('a protobuf field is longer than the body');
      out.push({ n, wire: 2, v: b.subarray(after, end) });
      at = end;
    } else throw unsupported(`protobuf wire type ${wire} is not expected here`);
  }
  return out;
}

function scalar(t: Scalar, f: Raw, where: string): unknown {
  if (t === 'int' || t === 'bool') {
    if (f.wire !== 0) throw unsupported(`${where}: expected a varint`);
    const v = f.v as bigint;
    if (t === 'bool') return v !== 0n;
    return Number(BigInt.asIntN(64, v));
  }
  if (f.wire !== 2) throw unsupported(`${where}: expected bytes`);
  const buf = f.v as Buffer;
  if (t === 'bytes') return buf.toString('base64');
  if (t === 'time') {
    // metav1.Time: 1 seconds, 2 nanos
    const secs = readFields(buf).find((x) => x.n === 1);
    return secs
      ? new Date(Number(secs.v as bigint) * 1000).toISOString().replace('.000Z', 'Z')
      : null;
  }
  return buf.toString('utf8');
}

function decodeMessage(schema: Schema, b: Buffer): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of readFields(b)) {
    const def = schema.fields[f.n];
    // Go's generated marshallers write every non-pointer field, zero values too:
    // an unknown field is fine while it is zero (it is what JSON would omit).
    const zero = f.wire === 0 ? f.v === 0n : (f.v as Buffer).length === 0;
    if (!def) {
      if (zero) continue;
      throw unsupported(`protobuf field ${f.n} of ${schema.name} is not understood`);
    }
    const [name, type, repeated, keepZero] = def;
    if (zero && !keepZero && !repeated && typeof type === 'string') continue;
    const where = `${schema.name}.${name}`;
    let value: unknown;
    if (type === 'intstr') {
      // IntOrString: 1 type (0 int, 1 string), 2 intVal, 3 strVal
      const parts = readFields(f.v as Buffer);
      const kind = parts.find((x) => x.n === 1);
      const isStr = kind !== undefined && (kind.v as bigint) === 1n;
      const p = parts.find((x) => x.n === (isStr ? 3 : 2));
      value = isStr
        ? p
          ? (p.v as Buffer).toString('utf8')
          : ''
        : p
          ? Number(BigInt.asIntN(32, p.v as bigint))
          : 0;
    } else if (typeof type === 'string') value = scalar(type, f, where);
    else if ('map' in type) {
      // a map entry: 1 key, 2 value
      const parts = readFields(f.v as Buffer);
      const k = parts.find((x) => x.n === 1);
      const v = parts.find((x) => x.n === 2);
      const key = k ? (k.v as Buffer).toString('utf8') : '';
      const vt = type.map;
      const val =
        typeof vt === 'string'
          ? v
            ? scalar(vt, v, where)
            : vt === 'int'
              ? 0
              : ''
          : v
            ? vt === QUANTITY
              ? decodeMessage(vt, v.v as Buffer).string
              : decodeMessage(vt, v.v as Buffer)
            : {};
      const m = (out[name] ?? {}) as Record<string, unknown>;
      m[key] = val;
      out[name] = m;
      continue;
    } else value = decodeMessage(type, f.v as Buffer);
    if (repeated) ((out[name] ??= []) as unknown[]).push(value);
    else out[name] = value;
  }
  return out;
}

/**
 * Decodes a protobuf request body into the object it carries (as JSON would have it).
 * @throws ApiError 415 for a body that is not a Kubernetes protobuf envelope, a kind
 * outside those decoded, or a field not known.
 */
export function decodeProtobufObject(body: Buffer): KubeObject {
  if (body.length < 4 || !body.subarray(0, 4).equals(PROTOBUF_MAGIC))
    throw unsupported('the protobuf body does not start with the Kubernetes magic "k8s\\0"');
  const unknown = readFields(body.subarray(4));
  const typeMeta = unknown.find((f) => f.n === 1);
  const raw = unknown.find((f) => f.n === 2);
  const enc = unknown.find((f) => f.n === 3);
  if (enc && (enc.v as Buffer).length > 0)
    throw unsupported(
      `protobuf contentEncoding "${(enc.v as Buffer).toString()}" is not supported`,
    );
  let apiVersion = '';
  let kind = '';
  for (const f of typeMeta ? readFields(typeMeta.v as Buffer) : []) {
    if (f.n === 1) apiVersion = (f.v as Buffer).toString('utf8');
    if (f.n === 2) kind = (f.v as Buffer).toString('utf8');
  }
  const schema = KINDS[`${apiVersion}/${kind}`];
  if (!schema)
    throw unsupported(
      `protobuf bodies of kind "${kind}" (${apiVersion || 'no apiVersion'}) are not decoded`,
    );
  const obj = decodeMessage(schema, raw ? (raw.v as Buffer) : Buffer.alloc(0));
  return {
    apiVersion,
    kind,
    ...obj,
    metadata: (obj.metadata ?? {}) as KubeObject['metadata'],
  } as KubeObject;
}
