/**
 * `tendril get KIND [NAME] -w | --watch-only`, as kubectl: the current objects
 * (unless --watch-only), then one line or document per change, read from the
 * API server's watch from the listed resourceVersion. Tables print the header
 * once and keep their column widths (kubectl's tabwriter remembers them);
 * `-o json|yaml|name|jsonpath|custom-columns` print each object as it comes.
 */
import type { ClientWatch, KubeClient } from '../k8s/client.js';
import type { KubeObject, WatchEventObject } from '../k8s/objects.js';
import { kubectlJSON, kubectlYAML, TableWriter } from '../k8s/printers.js';
import { apiVersionOf, kindDotGroup, type ResourceInfo } from '../k8s/resources.js';
import { ApiError, notFound, type Status } from '../k8s/status.js';
import { customColumnCells, parseOutput, tableRows, withTypeMeta } from './get-format.js';

/** Options of watchGet. */
export interface WatchGetOptions {
  /** Namespace to watch (undefined: all, with allNamespaces). */
  namespace?: string;
  allNamespaces?: boolean;
  /** Watch one object by name. */
  name?: string;
  selector?: string;
  fieldSelector?: string;
  output?: string;
  noHeaders?: boolean;
  allowMissingTemplateKeys?: boolean;
  /** Do not print the objects that exist when the watch starts. */
  watchOnly: boolean;
  /** Where the text goes (stdout). */
  write(text: string): void;
  /** Ends the watch (Ctrl-C). */
  signal: AbortSignal;
  /** Clock for AGE columns (tests). */
  now?: () => number;
}

/** Prints objects one after another in one output format. */
class StreamPrinter {
  private readonly table = new TableWriter();
  private headerDone = false;
  private count = 0;
  private readonly spec;

  constructor(
    private readonly info: ResourceInfo,
    private readonly o: WatchGetOptions,
  ) {
    this.spec = parseOutput(o.output);
  }

  print(objects: KubeObject[]): string {
    if (objects.length === 0) return '';
    const spec = this.spec;
    const now = this.o.now?.() ?? Date.now();
    const typed = objects.map((x) => withTypeMeta(x, this.info));
    switch (spec.type) {
      case 'table':
      case 'custom-columns': {
        let headers: string[];
        let rows: Array<Array<string | number>>;
        if (spec.type === 'table') {
          ({ headers, rows } = tableRows(
            { info: this.info, objects: typed },
            { wide: spec.wide, multi: false, allNamespaces: this.o.allNamespaces, now },
          ));
        } else {
          headers = spec.columns.map((c) => c.header);
          rows = typed.map((x) => customColumnCells(x, spec.columns));
        }
        const withHeader = !this.headerDone && !this.o.noHeaders;
        this.headerDone = true;
        return this.table.render(withHeader ? [headers, ...rows] : rows);
      }
      case 'json':
        return typed.map((x) => kubectlJSON(x) + '\n').join('');
      case 'yaml':
        return typed.map((x) => (this.count++ > 0 ? '---\n' : '') + kubectlYAML(x)).join('');
      case 'name':
        return typed.map((x) => `${kindDotGroup(this.info)}/${x.metadata.name}\n`).join('');
      case 'jsonpath':
        return typed
          .map((x) =>
            spec.path.execute(x, { allowMissingKeys: this.o.allowMissingTemplateKeys ?? true }),
          )
          .join('');
    }
  }
}

/**
 * Lists, prints, then prints every change until `signal` aborts. A watch the
 * server ends (timeout) is resumed from the last resourceVersion seen.
 * @throws ApiError (e.g. 410 Expired when the server no longer has the version to resume from).
 */
export async function watchGet(
  client: KubeClient,
  info: ResourceInfo,
  o: WatchGetOptions,
): Promise<void> {
  const printer = new StreamPrinter(info, o);
  const fieldSelector = [o.fieldSelector, o.name ? `metadata.name=${o.name}` : undefined]
    .filter(Boolean)
    .join(',');
  const scope = {
    namespace: o.namespace,
    labelSelector: o.selector,
    fieldSelector: fieldSelector || undefined,
  };
  const av = apiVersionOf(info);
  const list = await client.list(av, info.kind, scope);
  if (o.name && list.items.length === 0 && !o.watchOnly) throw notFound(info, o.name);
  if (!o.watchOnly) o.write(printer.print(list.items));
  let rv = list.metadata.resourceVersion;
  while (!o.signal.aborted) {
    let failure: unknown;
    let w: ClientWatch | undefined = undefined;
    w = await client.watch(av, info.kind, { ...scope, resourceVersion: rv }, (ev) => {
      if (failure) return;
      try {
        handle(ev);
      } catch (err) {
        failure = err;
        w?.close();
      }
    });
    function handle(ev: WatchEventObject): void {
      if (ev.type === 'ERROR') throw new ApiError(ev.object as unknown as Status);
      if (ev.object?.metadata?.resourceVersion) rv = ev.object.metadata.resourceVersion;
      if (ev.type === 'BOOKMARK') return;
      o.write(printer.print([ev.object]));
    }
    const aborted = new Promise<void>((resolve) => {
      if (o.signal.aborted) resolve();
      o.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    await Promise.race([w.done, aborted]);
    w.close();
    if (failure) throw failure;
  }
}
