/**
 * The API server's object registry: the in-memory cache of every object (the
 * source of reads and watches), the write path (validation, defaulting,
 * metadata, optimistic concurrency, hooks, persistence), the watch event
 * history (for resourceVersion resumes and 410 Expired), garbage collection
 * through ownerReferences, and graceful pod deletion. The HTTP layer and the
 * in-process controllers both call it.
 */
import { randomUUID } from 'node:crypto';
import { applyDefaults } from '../../k8s/defaults.js';
import {
  applyJsonPatch,
  clone,
  deepEqual,
  isPlainObject,
  JsonPatchError,
  mergePatch,
  type JsonPatchOp,
} from '../../k8s/mergepatch.js';
import type { KubeList, KubeObject, OwnerReference } from '../../k8s/objects.js';
import {
  StrategicPatchError,
  strategicMergePatch,
  supportsStrategicPatch,
} from '../../k8s/strategicpatch.js';
import {
  apiVersionOf,
  RESOURCES,
  resourceForKind,
  type ResourceInfo,
} from '../../k8s/resources.js';
import {
  matchesFields,
  matchesSelector,
  type FieldSelector,
  type Selector,
} from '../../k8s/selectors.js';
import {
  ApiError,
  alreadyExists,
  badRequest,
  conflict,
  expired,
  failure,
  notFound,
  type FieldError,
  invalid,
} from '../../k8s/status.js';
import { validateObject } from '../../k8s/validation.js';
import { validateStatus } from '../../k8s/validate-status.js';
import type { Logger } from '../../util/log.js';
import { nopLogger } from '../../util/log.js';
import { registryKey, type Persistence } from './storage.js';
import { isNotFound, isConflict } from '../../util/errors.js';

/** A change, as watchers see it. */
export interface RegistryEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  rv: number;
  info: ResourceInfo;
  object: KubeObject;
  /** The object before a MODIFIED. */
  old?: KubeObject;
}

/** Filters of list and watch. */
export interface ListOptions {
  namespace?: string;
  labelSelector?: Selector;
  fieldSelector?: FieldSelector;
}

/** Options of watch. */
export interface WatchOptions extends ListOptions {
  /** "" or "0": start with ADDED for every current object; otherwise events after this version. */
  resourceVersion?: string;
}

/** A live watch. */
export interface RegistryWatch {
  close(): void;
}

/** Hooks a component (e.g. the ClusterIP allocator) plugs into the write path. May throw ApiError. */
export interface WriteHooks {
  /** Before a create is persisted (after defaulting and validation). May mutate obj. */
  beforeCreate?(obj: KubeObject): void | Promise<void>;
  /** Before an update is persisted. May mutate obj. */
  beforeUpdate?(obj: KubeObject, old: KubeObject): void | Promise<void>;
  /** After an object is gone from the store. */
  afterDelete?(obj: KubeObject): void;
}

/** Options of Registry. */
export interface RegistryOptions {
  persistence: Persistence;
  /** Watch events kept for resuming watches (older versions get 410). Default 50000. */
  historySize?: number;
  logger?: Logger;
  /** Seconds after which a pod being deleted gracefully is removed even if no kubelet confirmed it. Default: its grace period, at most 30. */
  maxPodGraceSeconds?: number;
}

/** Options of delete. */
export interface DeleteOptions {
  propagationPolicy?: 'Background' | 'Foreground' | 'Orphan';
  gracePeriodSeconds?: number;
  preconditions?: { resourceVersion?: string; uid?: string };
}

const NAME_CHARS = 'bcdfghjklmnpqrstvwxz2456789';

/** Five random characters as Kubernetes appends to generateName. */
export function randomSuffix(n = 5): string {
  let s = '';
  for (let i = 0; i < n; i++) s += NAME_CHARS[Math.floor(Math.random() * NAME_CHARS.length)];
  return s;
}

/** Kubernetes' timestamp form: second precision, Z. */
export function nowTimestamp(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

interface Watcher {
  info: ResourceInfo;
  opts: ListOptions;
  /** Receives events; the objects are the registry's own: read them, never modify them. */
  send: (ev: {
    type: 'ADDED' | 'MODIFIED' | 'DELETED';
    object: KubeObject;
    old?: KubeObject;
  }) => void;
}

/** The object registry. Call `start()` before use. */
export class Registry {
  private readonly store: Persistence;
  private readonly log: Logger;
  /** key -> object (with resourceVersion). */
  private readonly objects = new Map<string, KubeObject>();
  /** resource id -> keys of that resource. */
  private readonly byResource = new Map<string, Set<string>>();
  /** owner uid -> keys (and resources) of the objects that name it in ownerReferences. */
  private readonly dependents = new Map<string, Map<string, ResourceInfo>>();
  private history: RegistryEvent[] = [];
  private historyFloor = 0;
  private readonly historySize: number;
  private revision = 0;
  private readonly watchers = new Set<Watcher>();
  private readonly hooks = new Map<string, WriteHooks[]>();
  private writeChain: Promise<unknown> = Promise.resolve();
  private readonly podTimers = new Map<string, NodeJS.Timeout>();
  private readonly maxPodGrace: number;
  private closed = false;

  constructor(options: RegistryOptions) {
    this.store = options.persistence;
    this.log = options.logger ?? nopLogger;
    this.historySize = options.historySize ?? 50000;
    this.maxPodGrace = options.maxPodGraceSeconds ?? 30;
  }

  /** Loads every stored object. */
  async start(): Promise<void> {
    const { kvs, revision } = await this.store.load();
    for (const kv of kvs) {
      const obj = JSON.parse(kv.value) as KubeObject;
      const info = resourceForKind(obj.apiVersion, obj.kind);
      if (!info) {
        this.log.warn('skipping stored object of unknown kind', { key: kv.key });
        continue;
      }
      obj.metadata.resourceVersion = String(kv.modRevision);
      this.index(info, kv.key, obj);
    }
    this.revision = revision;
    this.historyFloor = revision;
    // Pods that were being deleted when the server stopped get their timers back.
    for (const key of this.byResource.get(resId(podInfo())) ?? []) {
      const pod = this.objects.get(key)!;
      if (pod.metadata.deletionTimestamp) this.schedulePodForceDelete(pod, 1);
    }
  }

  /** Stops timers and closes the store. */
  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.podTimers.values()) clearTimeout(t);
    this.podTimers.clear();
    await this.writeChain.catch(() => {});
    await this.store.close();
  }

  /** The current global resourceVersion. */
  currentRevision(): number {
    return this.revision;
  }

  /** Registers write hooks for a kind. */
  addHooks(kind: string, hooks: WriteHooks): void {
    const list = this.hooks.get(kind) ?? [];
    list.push(hooks);
    this.hooks.set(kind, list);
  }

  private index(info: ResourceInfo, key: string, obj: KubeObject): void {
    const prev = this.objects.get(key);
    if (prev) this.unindexOwners(prev, key);
    this.objects.set(key, obj);
    let set = this.byResource.get(resId(info));
    if (!set) this.byResource.set(resId(info), (set = new Set()));
    set.add(key);
    for (const r of obj.metadata.ownerReferences ?? []) {
      let deps = this.dependents.get(r.uid);
      if (!deps) this.dependents.set(r.uid, (deps = new Map()));
      deps.set(key, info);
    }
  }

  private unindex(info: ResourceInfo, key: string): void {
    const prev = this.objects.get(key);
    if (prev) this.unindexOwners(prev, key);
    this.objects.delete(key);
    this.byResource.get(resId(info))?.delete(key);
  }

  private unindexOwners(obj: KubeObject, key: string): void {
    for (const r of obj.metadata.ownerReferences ?? []) {
      const deps = this.dependents.get(r.uid);
      deps?.delete(key);
      if (deps?.size === 0) this.dependents.delete(r.uid);
    }
  }

  private keyOf(info: ResourceInfo, namespace: string | undefined, name: string): string {
    return registryKey(info.plural, info.group, info.namespaced ? namespace : undefined, name);
  }

  /**
   * Serializes writes: one at a time, in call order. The caller's promise
   * resolves once the store made the write durable (`flush`: group commit, so
   * writes queued behind this one share its fsync); the next write does not wait for it.
   */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.writeChain.then(fn, fn);
    this.writeChain = p.catch(() => {});
    if (!this.store.flush) return p;
    return p.then(async (v) => {
      await this.store.flush!();
      return v;
    });
  }

  // ---- reads ----

  /**
   * Returns a copy of one object.
   * @throws ApiError 404.
   */
  get(info: ResourceInfo, namespace: string | undefined, name: string): KubeObject {
    const obj = this.objects.get(this.keyOf(info, namespace, name));
    if (!obj) throw notFound(info, name);
    return clone(obj);
  }

  /** Returns the object or undefined (no copy: callers must not modify it). */
  peek(info: ResourceInfo, namespace: string | undefined, name: string): KubeObject | undefined {
    return this.objects.get(this.keyOf(info, namespace, name));
  }

  /** Lists objects (copies) matching the filters, sorted by namespace and name, with the current resourceVersion. */
  list(info: ResourceInfo, opts: ListOptions = {}): KubeList {
    const items: KubeObject[] = [];
    for (const key of this.byResource.get(resId(info)) ?? []) {
      const o = this.objects.get(key)!;
      if (matches(info, o, opts)) items.push(clone(o));
    }
    items.sort(byNamespaceName);
    return {
      apiVersion: apiVersionOf(info),
      kind: `${info.kind}List`,
      metadata: { resourceVersion: String(this.revision) },
      items,
    };
  }

  /** Like list but the items are the registry's own objects (read-only: for serializing). */
  listShared(info: ResourceInfo, opts: ListOptions = {}): KubeList {
    const items = this.scan(info, opts).sort(byNamespaceName);
    return {
      apiVersion: apiVersionOf(info),
      kind: `${info.kind}List`,
      metadata: { resourceVersion: String(this.revision) },
      items,
    };
  }

  /** Like list but without copies, for in-process controllers that only read. */
  scan(info: ResourceInfo, opts: ListOptions = {}): KubeObject[] {
    const out: KubeObject[] = [];
    for (const key of this.byResource.get(resId(info)) ?? []) {
      const o = this.objects.get(key)!;
      if (matches(info, o, opts)) out.push(o);
    }
    return out;
  }

  /**
   * Watches a resource. Events are delivered synchronously, in resourceVersion order.
   * @throws ApiError 410 Expired when resourceVersion is older than the kept history.
   */
  watch(info: ResourceInfo, opts: WatchOptions, send: Watcher['send']): RegistryWatch {
    const w: Watcher = { info, opts, send };
    const rvText = opts.resourceVersion ?? '';
    if (rvText === '' || rvText === '0') {
      for (const o of this.scan(info, opts).sort(byNamespaceName))
        send({ type: 'ADDED', object: o });
    } else {
      const rv = Number(rvText);
      if (!Number.isInteger(rv) || rv < 0) throw badRequest(`invalid resource version "${rvText}"`);
      if (rv < this.historyFloor) {
        throw expired(`too old resource version: ${rv} (${this.historyFloor})`);
      }
      // Binary search for the first event after rv.
      let lo = 0;
      let hi = this.history.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (this.history[mid]!.rv <= rv) lo = mid + 1;
        else hi = mid;
      }
      for (let i = lo; i < this.history.length; i++) this.deliver(w, this.history[i]!);
    }
    this.watchers.add(w);
    return { close: () => void this.watchers.delete(w) };
  }

  private deliver(w: Watcher, ev: RegistryEvent): void {
    if (resId(w.info) !== resId(ev.info)) return;
    const now = matches(w.info, ev.object, w.opts);
    if (
      ev.type === 'MODIFIED' &&
      ev.old &&
      (w.opts.labelSelector?.length || w.opts.fieldSelector?.length)
    ) {
      const before = matches(w.info, ev.old, w.opts);
      if (before && !now) {
        // Kubernetes reports an object leaving the selection as DELETED (with the new state).
        w.send({ type: 'DELETED', object: ev.object });
        return;
      }
      if (!before && now) {
        w.send({ type: 'ADDED', object: ev.object });
        return;
      }
    }
    if (now)
      w.send(
        ev.old
          ? { type: ev.type, object: ev.object, old: ev.old }
          : { type: ev.type, object: ev.object },
      );
  }

  private emit(ev: RegistryEvent): void {
    this.history.push(ev);
    if (this.history.length > this.historySize + Math.max(10, this.historySize >> 4)) {
      const drop = this.history.length - this.historySize;
      this.historyFloor = this.history[drop - 1]!.rv;
      this.history = this.history.slice(drop);
    }
    for (const w of [...this.watchers]) {
      try {
        this.deliver(w, ev);
      } catch (err) {
        this.log.warn('watcher failed; dropping it', { err });
        this.watchers.delete(w);
      }
    }
  }

  // ---- writes ----

  /**
   * Creates an object. Fills name (generateName), uid, creationTimestamp,
   * generation, resourceVersion; defaults; validates; runs hooks.
   * @throws ApiError 400/404 (namespace)/409 AlreadyExists/422 Invalid.
   */
  create(
    info: ResourceInfo,
    namespace: string | undefined,
    input: KubeObject,
    options: { dryRun?: boolean } = {},
  ): Promise<KubeObject> {
    return this.serial(async () => {
      const obj = clone(input);
      this.checkKind(info, obj);
      obj.metadata ??= {};
      if (!isPlainObject(obj.metadata)) throw badRequest('metadata must be an object');
      this.fixNamespace(info, namespace, obj);
      if (!obj.metadata.name && obj.metadata.generateName)
        obj.metadata.name = `${obj.metadata.generateName}${randomSuffix()}`;
      applyDefaults(obj);
      validateObject(obj, { allowGenerateName: true });
      validateStatus(obj, info.group);
      if (info.namespaced) this.requireNamespace(obj.metadata.namespace!, info);
      const key = this.keyOf(info, obj.metadata.namespace, obj.metadata.name!);
      if (this.objects.has(key)) throw alreadyExists(info, obj.metadata.name!);
      const m = obj.metadata;
      delete m.resourceVersion;
      delete m.deletionTimestamp;
      m.uid = randomUUID();
      m.creationTimestamp = nowTimestamp();
      if (obj.spec !== undefined || info.kind === 'Deployment') m.generation = 1;
      if (info.kind === 'Pod') {
        obj.status = {
          phase: 'Pending',
          qosClass: 'BestEffort',
          ...(isPlainObject(obj.status) ? obj.status : {}),
        };
      } else if (info.kind === 'Namespace') {
        obj.status = { phase: 'Active' };
      } else if (
        info.subresources.includes('status') &&
        info.kind !== 'Node' &&
        obj.status === undefined
      ) {
        obj.status = info.kind === 'Service' ? { loadBalancer: {} } : {};
      }
      for (const h of this.hooks.get(info.kind) ?? []) await h.beforeCreate?.(obj);
      if (options.dryRun) return clone(obj);
      return this.persistPut(info, key, obj, undefined);
    });
  }

  /**
   * Replaces an object (PUT). With subresource "status" only the status is
   * taken from the input; otherwise status is kept from the stored object for
   * kinds with a status subresource. A resourceVersion in the input must match.
   * @throws ApiError 404/409 Conflict/422.
   */
  update(
    info: ResourceInfo,
    namespace: string | undefined,
    name: string,
    input: KubeObject,
    options: { subresource?: string; dryRun?: boolean } = {},
  ): Promise<KubeObject> {
    return this.serial(() => this.updateLocked(info, namespace, name, clone(input), options));
  }

  private async updateLocked(
    info: ResourceInfo,
    namespace: string | undefined,
    name: string,
    obj: KubeObject,
    options: { subresource?: string; dryRun?: boolean },
  ): Promise<KubeObject> {
    this.checkKind(info, obj);
    if (!isPlainObject(obj.metadata)) throw badRequest('metadata must be an object');
    this.fixNamespace(info, namespace, obj);
    if (obj.metadata.name !== undefined && obj.metadata.name !== name) {
      throw badRequest(
        `the name of the object (${String(obj.metadata.name)}) does not match the name on the URL (${name})`,
      );
    }
    obj.metadata.name = name;
    const key = this.keyOf(info, obj.metadata.namespace, name);
    const old = this.objects.get(key);
    if (!old) throw notFound(info, name);
    const rv = obj.metadata.resourceVersion;
    if (rv !== undefined && rv !== '' && rv !== old.metadata.resourceVersion) {
      throw conflict(
        info,
        name,
        'the object has been modified; please apply your changes to the latest version and try again',
      );
    }
    let next: KubeObject;
    if (options.subresource === 'status') {
      next = clone(old);
      next.status = obj.status;
    } else if (options.subresource) {
      throw new ApiError(
        failure(
          404,
          'NotFound',
          `the server could not find the requested resource (subresource ${options.subresource})`,
        ),
      );
    } else {
      next = obj;
      const m = next.metadata;
      const om = old.metadata;
      m.uid = om.uid;
      m.creationTimestamp = om.creationTimestamp;
      m.namespace = om.namespace;
      if (om.deletionTimestamp) m.deletionTimestamp = om.deletionTimestamp;
      else delete m.deletionTimestamp;
      if (om.generation !== undefined) m.generation = om.generation;
      if (info.subresources.includes('status')) next.status = clone(old.status);
      if (info.kind === 'Service' && isPlainObject(next.spec) && isPlainObject(old.spec)) {
        // clusterIP is immutable; an update that leaves it empty keeps the allocated one.
        if (!next.spec.clusterIP && old.spec.clusterIP) {
          next.spec.clusterIP = old.spec.clusterIP;
          if (old.spec.clusterIPs) next.spec.clusterIPs = old.spec.clusterIPs;
        }
      }
      if (
        info.kind === 'Pod' &&
        isPlainObject(next.spec) &&
        isPlainObject(old.spec) &&
        old.spec.nodeName &&
        next.spec.nodeName !== old.spec.nodeName
      ) {
        throw invalid(info.kind, info.group, name, [
          {
            type: 'FieldValueForbidden',
            field: 'spec.nodeName',
            detail:
              'pod updates may not change fields other than `spec.containers[*].image`, `spec.activeDeadlineSeconds`, `spec.tolerations`, or `spec.terminationGracePeriodSeconds`',
          },
        ]);
      }
    }
    if (
      info.kind === 'Deployment' &&
      options.subresource !== 'status' &&
      !deepEqual(next.spec?.selector, old.spec?.selector)
    ) {
      throw invalid(info.kind, info.group, name, [
        {
          type: 'FieldValueInvalid',
          field: 'spec.selector',
          value: next.spec?.selector,
          detail: 'field is immutable',
        },
      ]);
    }
    applyDefaults(next);
    validateObject(next);
    validateStatus(next, info.group);
    if (
      !deepEqual(stripVolatile(next.spec), stripVolatile(old.spec)) &&
      options.subresource !== 'status'
    ) {
      next.metadata.generation = (old.metadata.generation ?? 0) + 1;
    }
    for (const h of this.hooks.get(info.kind) ?? []) await h.beforeUpdate?.(next, old);
    delete next.metadata.resourceVersion;
    const oldCmp = { ...old, metadata: { ...old.metadata } };
    delete oldCmp.metadata.resourceVersion;
    if (deepEqual(oldCmp, next)) return clone(old); // no-op: no new version, no event
    if (options.dryRun) return next;
    // Removing the last finalizer of an object being deleted completes the delete.
    if (
      old.metadata.deletionTimestamp &&
      !next.metadata.finalizers?.length &&
      info.kind !== 'Pod'
    ) {
      return this.persistDelete(info, key, next);
    }
    return this.persistPut(info, key, next, old);
  }

  /**
   * Applies a merge patch (RFC 7386), a strategic merge patch (lists merged by
   * their patch merge key, see strategicpatch.ts; custom resources take it as a
   * merge patch) or, with type "json", an RFC 6902 JSON patch of at most
   * MAX_JSON_PATCH_OPERATIONS operations. The patched object may be at most
   * `maxBytes` of JSON (default 3 MiB).
   * @throws ApiError 404/409/413 (too many operations, too large a result)/415/422.
   */
  patch(
    info: ResourceInfo,
    namespace: string | undefined,
    name: string,
    patch: unknown,
    options: {
      subresource?: string;
      dryRun?: boolean;
      type?: 'merge' | 'json' | 'strategic';
      maxBytes?: number;
    } = {},
  ): Promise<KubeObject> {
    const maxBytes = options.maxBytes ?? 3 * 1024 * 1024;
    return this.serial(async () => {
      const key = this.keyOf(info, namespace, name);
      const old = this.objects.get(key);
      if (!old) throw notFound(info, name);
      const base = clone(old);
      let patched: KubeObject;
      let prv: unknown;
      if (options.type === 'json') {
        if (!Array.isArray(patch)) throw badRequest('a JSON patch must be a list of operations');
        try {
          patched = applyJsonPatch(base, patch as JsonPatchOp[], {
            maxCopyBytes: maxBytes,
          }) as KubeObject;
        } catch (err) {
          if (err instanceof JsonPatchError && err.tooLarge)
            throw new ApiError(failure(413, 'RequestEntityTooLarge', err.message));
          if (err instanceof JsonPatchError)
            throw new ApiError(
              failure(422, 'Invalid', `the JSON patch could not be applied: ${err.message}`),
            );
          throw err;
        }
        if (!isPlainObject(patched) || !isPlainObject(patched.metadata))
          throw badRequest('the JSON patch removed the object metadata');
        prv =
          patched.metadata.resourceVersion !== old.metadata.resourceVersion
            ? patched.metadata.resourceVersion
            : undefined;
      } else {
        if (!isPlainObject(patch)) throw badRequest('the patch must be a JSON object');
        if (options.type === 'strategic' && supportsStrategicPatch(info.kind)) {
          try {
            patched = strategicMergePatch(info.kind, base, patch) as KubeObject;
          } catch (err) {
            if (err instanceof StrategicPatchError)
              throw new ApiError(
                failure(
                  422,
                  'Invalid',
                  `the strategic merge patch could not be applied: ${err.message}`,
                ),
              );
            throw err;
          }
        } else patched = mergePatch(base, patch) as KubeObject;
        if (!isPlainObject(patched) || !isPlainObject(patched.metadata))
          throw badRequest('the patch removed the object metadata');
        prv = isPlainObject(patch.metadata) ? patch.metadata.resourceVersion : undefined;
      }
      const size = Buffer.byteLength(JSON.stringify(patched));
      if (size > maxBytes)
        throw new ApiError(
          failure(
            413,
            'RequestEntityTooLarge',
            `the patched object would be ${size} bytes, more than the limit of ${maxBytes}: make the patch smaller`,
          ),
        );
      // A patch without resourceVersion is unconditional.
      patched.metadata.resourceVersion =
        typeof prv === 'string' ? prv : old.metadata.resourceVersion;
      return this.updateLocked(info, namespace, name, patched, options);
    });
  }

  /**
   * Deletes an object. Pods bound to a node are deleted gracefully (deletionTimestamp
   * set; the kubelet confirms with gracePeriodSeconds=0, or the server removes them
   * when the grace period ends). Dependents (ownerReferences) are deleted afterwards
   * unless propagationPolicy is Orphan. Returns the object as deleted (or as marked).
   * @throws ApiError 404/409 (preconditions)/403 (default namespaces).
   */
  delete(
    info: ResourceInfo,
    namespace: string | undefined,
    name: string,
    options: DeleteOptions = {},
  ): Promise<KubeObject> {
    return this.serial(() => this.deleteLocked(info, namespace, name, options));
  }

  private async deleteLocked(
    info: ResourceInfo,
    namespace: string | undefined,
    name: string,
    options: DeleteOptions,
  ): Promise<KubeObject> {
    const key = this.keyOf(info, namespace, name);
    const old = this.objects.get(key);
    if (!old) throw notFound(info, name);
    const pre = options.preconditions;
    if (pre?.resourceVersion && pre.resourceVersion !== old.metadata.resourceVersion) {
      throw conflict(
        info,
        name,
        `the ResourceVersion in the precondition (${pre.resourceVersion}) does not match the ResourceVersion in record (${old.metadata.resourceVersion}). The object might have been modified`,
      );
    }
    if (pre?.uid && pre.uid !== old.metadata.uid) {
      throw conflict(
        info,
        name,
        `the UID in the precondition (${pre.uid}) does not match the UID in record (${old.metadata.uid}). The object might have been deleted and then recreated`,
      );
    }
    if (info.kind === 'Namespace' && ['default', 'kube-system', 'kube-public'].includes(name)) {
      throw new ApiError(
        failure(
          403,
          'Forbidden',
          `namespaces "${name}" is forbidden: this namespace may not be deleted`,
          { name, kind: 'namespaces' },
        ),
      );
    }
    let result: KubeObject;
    const finalizers = old.metadata.finalizers ?? [];
    if (info.kind === 'Pod' && this.isGraceful(old, options)) {
      if (old.metadata.deletionTimestamp) return clone(old);
      const next = clone(old);
      const grace = options.gracePeriodSeconds ?? old.spec?.terminationGracePeriodSeconds ?? 30;
      next.metadata.deletionTimestamp = nowTimestamp();
      next.metadata.deletionGracePeriodSeconds = grace;
      delete next.metadata.resourceVersion;
      result = await this.persistPut(info, key, next, old);
      this.schedulePodForceDelete(result, Math.min(grace, this.maxPodGrace));
    } else if (finalizers.length > 0) {
      if (old.metadata.deletionTimestamp) return clone(old);
      const next = clone(old);
      next.metadata.deletionTimestamp = nowTimestamp();
      next.metadata.deletionGracePeriodSeconds = 0;
      delete next.metadata.resourceVersion;
      result = await this.persistPut(info, key, next, old);
    } else {
      result = await this.persistDelete(info, key, old);
    }
    if (options.propagationPolicy === 'Orphan') await this.orphanDependents(old);
    else await this.deleteDependents(old);
    if (info.kind === 'Namespace') await this.deleteNamespaceContents(name);
    return result;
  }

  private isGraceful(pod: KubeObject, options: DeleteOptions): boolean {
    if (options.gracePeriodSeconds === 0) return false;
    if (!pod.spec?.nodeName) return false;
    const phase = pod.status?.phase;
    return phase !== 'Succeeded' && phase !== 'Failed';
  }

  private schedulePodForceDelete(pod: KubeObject, seconds: number): void {
    const uid = pod.metadata.uid!;
    if (this.podTimers.has(uid) || this.closed) return;
    const t = setTimeout(() => {
      this.podTimers.delete(uid);
      const info = podInfo();
      const cur = this.peek(info, pod.metadata.namespace, pod.metadata.name!);
      if (!cur || cur.metadata.uid !== uid) return;
      this.delete(info, pod.metadata.namespace, pod.metadata.name!, {
        gracePeriodSeconds: 0,
        preconditions: { uid },
      }).catch((err) => {
        if (!(isNotFound(err) || isConflict(err)))
          this.log.warn('force-delete pod failed', { err });
      });
    }, seconds * 1000);
    t.unref();
    this.podTimers.set(uid, t);
  }

  private async deleteDependents(owner: KubeObject): Promise<void> {
    const uid = owner.metadata.uid!;
    for (const [key, info] of [...(this.dependents.get(uid) ?? [])]) {
      const o = this.objects.get(key);
      if (!o?.metadata.ownerReferences?.some((r) => r.uid === uid)) continue;
      const remaining = o.metadata.ownerReferences.filter((r) => r.uid !== uid);
      try {
        if (remaining.length > 0) {
          const next = clone(o);
          next.metadata.ownerReferences = remaining;
          delete next.metadata.resourceVersion;
          await this.persistPut(info, key, next, o);
        } else {
          await this.deleteLocked(info, o.metadata.namespace, o.metadata.name!, {});
        }
      } catch (err) {
        if (!isNotFound(err)) this.log.warn('garbage collection failed', { key, err });
      }
    }
  }

  private async orphanDependents(owner: KubeObject): Promise<void> {
    const uid = owner.metadata.uid!;
    for (const [key, info] of [...(this.dependents.get(uid) ?? [])]) {
      const o = this.objects.get(key);
      if (!o?.metadata.ownerReferences?.some((r: OwnerReference) => r.uid === uid)) continue;
      const next = clone(o);
      next.metadata.ownerReferences = o.metadata.ownerReferences.filter((r) => r.uid !== uid);
      if (next.metadata.ownerReferences.length === 0) delete next.metadata.ownerReferences;
      delete next.metadata.resourceVersion;
      await this.persistPut(info, key, next, o);
    }
  }

  private async deleteNamespaceContents(ns: string): Promise<void> {
    for (const info of RESOURCES) {
      if (!info.namespaced) continue;
      for (const key of [...(this.byResource.get(resId(info)) ?? [])]) {
        const o = this.objects.get(key);
        if (!o || o.metadata.namespace !== ns) continue;
        try {
          await this.deleteLocked(info, ns, o.metadata.name!, { gracePeriodSeconds: 0 });
        } catch (err) {
          if (!isNotFound(err)) this.log.warn('namespace cleanup failed', { key, err });
        }
      }
    }
  }

  private async persistPut(
    info: ResourceInfo,
    key: string,
    obj: KubeObject,
    old: KubeObject | undefined,
  ): Promise<KubeObject> {
    const stored = clone(obj);
    delete stored.metadata.resourceVersion;
    const rv = await this.store.put(key, JSON.stringify(stored));
    stored.metadata.resourceVersion = String(rv);
    this.revision = Math.max(this.revision, rv);
    this.index(info, key, stored);
    this.emit(
      old
        ? { type: 'MODIFIED', rv, info, object: stored, old }
        : { type: 'ADDED', rv, info, object: stored },
    );
    return clone(stored);
  }

  private async persistDelete(
    info: ResourceInfo,
    key: string,
    old: KubeObject,
  ): Promise<KubeObject> {
    const rv = await this.store.delete(key);
    this.revision = Math.max(this.revision, rv);
    this.unindex(info, key);
    const gone = clone(old);
    gone.metadata.resourceVersion = String(rv);
    this.emit({ type: 'DELETED', rv, info, object: gone });
    for (const h of this.hooks.get(info.kind) ?? []) h.afterDelete?.(gone);
    const t = this.podTimers.get(old.metadata.uid ?? '');
    if (t) {
      clearTimeout(t);
      this.podTimers.delete(old.metadata.uid!);
    }
    return clone(gone);
  }

  private checkKind(info: ResourceInfo, obj: KubeObject): void {
    if (!isPlainObject(obj)) throw badRequest('the body must be a JSON object');
    obj.apiVersion ||= apiVersionOf(info);
    obj.kind ||= info.kind;
    if (obj.kind !== info.kind || obj.apiVersion !== apiVersionOf(info)) {
      throw badRequest(
        `the API version in the data (${obj.apiVersion}) does not match the expected API version (${apiVersionOf(info)}) or kind ${obj.kind} does not match ${info.kind}`,
      );
    }
  }

  private fixNamespace(info: ResourceInfo, namespace: string | undefined, obj: KubeObject): void {
    const m = obj.metadata;
    if (!info.namespaced) {
      delete m.namespace;
      return;
    }
    if (namespace) {
      if (m.namespace && m.namespace !== namespace) {
        throw badRequest(
          'the namespace of the provided object does not match the namespace sent on the request',
        );
      }
      m.namespace = namespace;
    } else if (!m.namespace) {
      m.namespace = 'default';
    }
  }

  private requireNamespace(ns: string, info: ResourceInfo): void {
    const nsInfo = RESOURCES.find((r) => r.kind === 'Namespace')!;
    const nsObj = this.objects.get(this.keyOf(nsInfo, undefined, ns));
    if (!nsObj) throw notFound(nsInfo, ns);
    if (nsObj.metadata.deletionTimestamp) {
      throw new ApiError(
        failure(
          403,
          'Forbidden',
          `${info.plural} is forbidden: unable to create new content in namespace ${ns} because it is being terminated`,
        ),
      );
    }
  }

  /** Validation errors helper for hooks. */
  static invalid(info: ResourceInfo, name: string, errors: FieldError[]): ApiError {
    return invalid(info.kind, info.group, name, errors);
  }
}

function resId(info: ResourceInfo): string {
  return `${info.group}/${info.plural}`;
}

function podInfo(): ResourceInfo {
  return RESOURCES.find((r) => r.kind === 'Pod')!;
}

function matches(info: ResourceInfo, o: KubeObject, opts: ListOptions): boolean {
  if (info.namespaced && opts.namespace && o.metadata.namespace !== opts.namespace) return false;
  if (
    opts.labelSelector &&
    opts.labelSelector.length &&
    !matchesSelector(opts.labelSelector, o.metadata.labels)
  )
    return false;
  if (opts.fieldSelector && opts.fieldSelector.length && !matchesFields(opts.fieldSelector, o))
    return false;
  return true;
}

function byNamespaceName(a: KubeObject, b: KubeObject): number {
  const an = a.metadata.namespace ?? '';
  const bn = b.metadata.namespace ?? '';
  if (an !== bn) return an < bn ? -1 : 1;
  const x = a.metadata.name ?? '';
  const y = b.metadata.name ?? '';
  return x < y ? -1 : x > y ? 1 : 0;
}

function stripVolatile(spec: unknown): unknown {
  return spec;
}
