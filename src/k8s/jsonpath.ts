/**
 * kubectl's JSONPath dialect (k8s.io/client-go/util/jsonpath), for
 * `get -o jsonpath=`, `-o custom-columns=` and `--sort-by`:
 *
 *   text outside braces is printed as is      `name: {.metadata.name}`
 *   fields, wildcard, escaped dots            `{.metadata.labels.app\.kubernetes\.io/name}`, `{.spec.*}`
 *   index, negative index, slice, step        `[0]`, `[-1]`, `[0:2]`, `[::2]`, `[*]`, union `[0,2]`, `['key']`
 *   recursive descent                         `{..name}`
 *   filters                                   `[?(@.name=="c")]`, `[?(@.port>80)]`, `[?(@.ready)]`
 *   range                                     `{range .items[*]}{.metadata.name}{"\n"}{end}`
 *   string literals                           `{"\t"}`, `{'\n'}`
 *
 * Output follows kubectl: the values of one `{...}` are joined by a space;
 * maps and lists print as compact JSON (keys sorted, as Go's encoding/json);
 * numbers, booleans and strings as text. A missing field is not an error
 * unless missing keys are disallowed (kubectl's --allow-missing-template-keys=false).
 *
 *   const p = parseJsonPath('{range .items[*]}{.metadata.name}{"\n"}{end}');
 *   p.execute(list)                      -> "a\nb\n"
 *   p.findResults(obj)                   -> [[value, ...], ...] (one list per `{...}`)
 *
 * Leaf module: no I/O, no dependencies.
 */
import { TendrilError } from '../util/errors.js';

/** A JSONPath template could not be parsed. */
export class JsonPathParseError extends TendrilError {
  constructor(template: string, detail: string) {
    super('JSONPATH_PARSE', `error parsing jsonpath ${template}, ${detail}`, {
      hint: 'kubectl dialect, e.g. {.metadata.name} or {range .items[*]}{.metadata.name}{"\\n"}{end}',
    });
    this.name = 'JsonPathParseError';
  }
}

/** A JSONPath template failed on the data (missing key when not allowed, bad index, ...). */
export class JsonPathExecError extends TendrilError {
  /** What went wrong, as kubectl words it (e.g. "nope is not found"). */
  readonly detail: string;
  constructor(template: string, detail: string) {
    super(
      'JSONPATH_EXEC',
      `error executing jsonpath "${template}": Error executing template: ${detail}`,
    );
    this.name = 'JsonPathExecError';
    this.detail = detail;
  }
}

/** One bound of an array subscript. */
interface Param {
  value: number;
  known: boolean;
  derived: boolean;
}

type PathNode =
  | { type: 'list'; nodes: PathNode[] }
  | { type: 'text'; text: string }
  | { type: 'field'; name: string }
  | { type: 'wildcard' }
  | { type: 'recursive' }
  | { type: 'array'; params: [Param, Param, Param] }
  | { type: 'union'; lists: ListNode[] }
  | { type: 'filter'; left: ListNode; right: ListNode; op: string }
  | { type: 'identifier'; name: string }
  | { type: 'number'; value: number }
  | { type: 'bool'; value: boolean };
type ListNode = Extract<PathNode, { type: 'list' }>;

/** A block of the template: text, one `{...}` action, or a range with its body. */
type Block =
  | { type: 'text'; text: string }
  | { type: 'action'; list: ListNode }
  | { type: 'range'; list: ListNode; body: Block[] };

const EOF = '';

function isSpace(r: string): boolean {
  return r === ' ' || r === '\t';
}
function isEndOfLine(r: string): boolean {
  return r === '\r' || r === '\n';
}
function isTerminator(r: string): boolean {
  return isSpace(r) || isEndOfLine(r) || r === EOF || '.,[]$@{}'.includes(r);
}
function isDigit(r: string): boolean {
  return r >= '0' && r <= '9';
}
function isAlphaNumeric(r: string): boolean {
  return r === '_' || /^[\p{L}\p{Nd}]$/u.test(r);
}

/** The parser of client-go's jsonpath, a character at a time. */
class Parser {
  private pos = 0;
  private start = 0;
  readonly root: ListNode = { type: 'list', nodes: [] };

  constructor(private readonly input: string) {}

  parse(): ListNode {
    this.parseText(this.root);
    return this.root;
  }

  private next(): string {
    if (this.pos >= this.input.length) {
      this.pos = this.input.length + 1; // past the end: backup() returns to the end
      return EOF;
    }
    const r = this.input[this.pos]!;
    this.pos++;
    return r;
  }
  private backup(): void {
    this.pos--;
  }
  private peek(): string {
    const r = this.next();
    this.backup();
    return r;
  }
  private consumeText(): string {
    const end = Math.min(this.pos, this.input.length);
    const v = this.input.slice(this.start, end);
    this.start = end;
    return v;
  }

  private parseText(cur: ListNode): void {
    for (;;) {
      if (this.input.startsWith('{', this.pos)) {
        if (this.pos > this.start) cur.nodes.push({ type: 'text', text: this.consumeText() });
        this.pos += 1;
        this.consumeText();
        const list: ListNode = { type: 'list', nodes: [] };
        cur.nodes.push(list);
        this.parseInsideAction(list);
        return;
      }
      if (this.next() === EOF) break;
    }
    if (Math.min(this.pos, this.input.length) > this.start)
      cur.nodes.push({ type: 'text', text: this.consumeText() });
  }

  private parseInsideAction(cur: ListNode): void {
    // A loop rather than client-go's tail recursion (templates can be long).
    for (;;) {
      const rest = this.input.slice(this.pos);
      if (rest.startsWith('}')) {
        this.pos += 1;
        this.consumeText();
        this.parseText(this.root);
        return;
      }
      if (rest.startsWith('[?(')) {
        this.parseFilter(cur);
        continue;
      }
      if (rest.startsWith('..')) {
        this.parseRecursive(cur);
        continue;
      }
      const r = this.next();
      if (r === EOF || isEndOfLine(r)) throw new Error('unclosed action');
      if (r === ' ') this.consumeText();
      else if (r === '@' || r === '$') this.consumeText();
      else if (r === '[') this.parseArray(cur);
      else if (r === '"' || r === "'") this.parseQuote(cur, r);
      else if (r === '.') this.parseField(cur);
      else if (r === '+' || r === '-' || isDigit(r)) {
        this.backup();
        this.parseNumber(cur);
      } else if (isAlphaNumeric(r)) {
        this.backup();
        this.parseIdentifier(cur);
      } else throw new Error(`unrecognized character in action: ${goRune(r)}`);
    }
  }

  private parseIdentifier(cur: ListNode): void {
    for (;;) {
      const r = this.next();
      if (isTerminator(r) || r === '(') {
        this.backup();
        break;
      }
    }
    const value = this.consumeText();
    if (value === 'true' || value === 'false')
      cur.nodes.push({ type: 'bool', value: value === 'true' });
    else cur.nodes.push({ type: 'identifier', name: value });
  }

  private parseRecursive(cur: ListNode): void {
    if (cur.nodes.at(-1)?.type === 'recursive')
      throw new Error('invalid multiple recursive descent');
    this.pos += 2;
    this.consumeText();
    cur.nodes.push({ type: 'recursive' });
    if (isAlphaNumeric(this.peek())) this.parseField(cur);
  }

  private parseNumber(cur: ListNode): void {
    let r = this.peek();
    if (r === '+' || r === '-') this.next();
    for (;;) {
      r = this.next();
      if (r !== '.' && !isDigit(r)) {
        this.backup();
        break;
      }
    }
    const value = this.consumeText();
    const n = Number(value);
    if (!/^[+-]?(\d+\.?\d*|\.\d+)$/.test(value) || Number.isNaN(n))
      throw new Error(`cannot parse number ${value}`);
    cur.nodes.push({ type: 'number', value: n });
  }

  private parseArray(cur: ListNode): void {
    for (;;) {
      const r = this.next();
      if (r === EOF || r === '\n') throw new Error('unterminated array');
      if (r === ']') break;
    }
    let text = this.consumeText();
    text = text.slice(1, -1);
    if (text === '*') text = ':';
    const parts = text.split(',');
    if (parts.length > 1) {
      cur.nodes.push({
        type: 'union',
        lists: parts.map((p) => parseAction(`[${p.trim()}]`)),
      });
      return;
    }
    const dict = /^'([^']*)'$/.exec(text);
    if (dict) {
      cur.nodes.push(...parseAction(`.${dict[1]}`).nodes);
      return;
    }
    const m = /^(-?\d*)(:-?\d*)?(:-?\d*)?$/.exec(text);
    if (!m) throw new Error(`invalid array index ${text}`);
    const params = [0, 1, 2].map(() => ({ value: 0, known: false, derived: false })) as [
      Param,
      Param,
      Param,
    ];
    for (let i = 0; i < 3; i++) {
      let v = m[i + 1] ?? '';
      if (v !== '') {
        if (i > 0) v = v.slice(1);
        if (i > 0 && v === '') params[i]!.known = false;
        else {
          params[i]!.known = true;
          params[i]!.value = Number.parseInt(v, 10);
          if (Number.isNaN(params[i]!.value)) throw new Error(`array index ${v} is not a number`);
        }
      } else if (i === 1) {
        params[1] = { known: true, value: params[0].value + 1, derived: true };
      }
    }
    cur.nodes.push({ type: 'array', params });
  }

  private parseFilter(cur: ListNode): void {
    this.pos += 3;
    this.consumeText();
    let begin = false;
    let end = false;
    let pair = '';
    for (;;) {
      const r = this.next();
      if (r === EOF || r === '\n') throw new Error('unterminated filter');
      if (r === '"' || r === "'") {
        if (!begin) {
          begin = true;
          pair = r;
          continue;
        }
        if (this.input[this.pos - 2] !== '\\' && r === pair) end = true;
      } else if (r === ')') {
        if (begin === end) break;
      }
    }
    if (this.next() !== ']') throw new Error('unclosed array expect ]');
    let text = this.consumeText();
    text = text.slice(0, -2);
    const m = /^([^!<>=]+)([!<>=]+)(.+?)$/.exec(text);
    if (!m) {
      cur.nodes.push({
        type: 'filter',
        left: parseAction(text),
        right: { type: 'list', nodes: [] },
        op: 'exists',
      });
    } else {
      cur.nodes.push({
        type: 'filter',
        left: parseAction(m[1]!),
        right: parseAction(m[3]!),
        op: m[2]!,
      });
    }
  }

  private parseQuote(cur: ListNode, end: string): void {
    for (;;) {
      const r = this.next();
      if (r === EOF || r === '\n') throw new Error('unterminated quoted string');
      if (r === '\\') {
        const e = this.next();
        if (e === EOF || e === '\n') throw new Error('unterminated quoted string');
      } else if (r === end) break;
    }
    const value = this.consumeText();
    cur.nodes.push({ type: 'text', text: unquote(value) });
  }

  private parseField(cur: ListNode): void {
    this.consumeText();
    for (;;) {
      const r = this.next();
      if (r === '\\') this.next();
      else if (isTerminator(r)) {
        this.backup();
        break;
      }
    }
    const value = this.consumeText();
    if (value === '*') cur.nodes.push({ type: 'wildcard' });
    else cur.nodes.push({ type: 'field', name: value.replaceAll('\\', '') });
  }
}

/** Parses the inside of an action (filter sides, union members), as client-go's parseAction. */
function parseAction(text: string): ListNode {
  const p = new Parser(`{${text}}`);
  const root = p.parse();
  return root.nodes[0] as ListNode;
}

function goRune(r: string): string {
  const cp = r.codePointAt(0) ?? 0;
  return `U+${cp.toString(16).toUpperCase().padStart(4, '0')} '${r}'`;
}

/** A quoted literal ("..." or '...') to its text, with Go's escapes. */
function unquote(quoted: string): string {
  const body = quoted.slice(1, -1);
  const simple: Record<string, string> = {
    n: '\n',
    t: '\t',
    r: '\r',
    a: '\x07',
    b: '\b',
    f: '\f',
    v: '\v',
    '\\': '\\',
    '"': '"',
    "'": "'",
  };
  return body.replace(
    /\\(u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|x[0-9a-fA-F]{2}|[0-7]{3}|.)/g,
    (whole, e: string) => {
      if (e.length === 1) {
        const v = simple[e];
        if (v === undefined) throw new Error(`unquote string ${quoted} error invalid syntax`);
        return v;
      }
      if (e[0] === 'u' || e[0] === 'U' || e[0] === 'x')
        return String.fromCodePoint(Number.parseInt(e.slice(1), 16));
      return String.fromCodePoint(Number.parseInt(e, 8));
    },
  );
}

/** Groups the parsed nodes into text, actions and range blocks (`{range X}` ... `{end}`). */
function toBlocks(nodes: PathNode[]): Block[] {
  const top: Block[] = [];
  const stack: Block[][] = [top];
  for (const n of nodes) {
    const cur = stack.at(-1)!;
    if (n.type === 'text') {
      cur.push({ type: 'text', text: n.text });
      continue;
    }
    const list = n as ListNode;
    const first = list.nodes[0];
    if (first?.type === 'identifier' && first.name === 'range') {
      const body: Block[] = [];
      cur.push({ type: 'range', list: { type: 'list', nodes: list.nodes.slice(1) }, body });
      stack.push(body);
    } else if (first?.type === 'identifier' && first.name === 'end' && list.nodes.length === 1) {
      if (stack.length === 1)
        cur.push({ type: 'action', list }); // fails when run, as in kubectl
      else stack.pop();
    } else cur.push({ type: 'action', list });
  }
  return top;
}

type Json = unknown;

function isMap(v: Json): v is Record<string, Json> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Options of execution. */
export interface JsonPathOptions {
  /** A field that no value has is not an error (kubectl's default for get). Default true. */
  allowMissingKeys?: boolean;
}

/** A parsed kubectl JSONPath template. */
export class JsonPath {
  private readonly blocks: Block[];

  /** @throws JsonPathParseError */
  constructor(readonly template: string) {
    let root: ListNode;
    try {
      root = new Parser(template).parse();
    } catch (err) {
      throw new JsonPathParseError(template, (err as Error).message);
    }
    this.blocks = toBlocks(root.nodes);
  }

  /**
   * The values of each text or `{...}` (ranges expanded), as client-go's FindResults.
   * @throws JsonPathExecError
   */
  findResults(data: Json, options: JsonPathOptions = {}): Json[][] {
    const allow = options.allowMissingKeys ?? true;
    const out: Json[][] = [];
    const run = (blocks: Block[], cur: Json) => {
      for (const b of blocks) {
        if (b.type === 'text') out.push([b.text]);
        else if (b.type === 'action') out.push(this.evalList([cur], b.list, allow));
        else for (const v of this.evalList([cur], b.list, allow)) run(b.body, v);
      }
    };
    try {
      run(this.blocks, data);
    } catch (err) {
      if (err instanceof EvalError) throw new JsonPathExecError(this.template, err.message);
      throw err;
    }
    return out;
  }

  /**
   * Runs the template and returns the text kubectl prints.
   * @throws JsonPathExecError
   */
  execute(data: Json, options: JsonPathOptions = {}): string {
    return this.findResults(data, options)
      .map((values) => values.map(printValue).join(' '))
      .join('');
  }

  private evalList(input: Json[], list: ListNode, allow: boolean): Json[] {
    let cur = input;
    for (const n of list.nodes) cur = this.walk(cur, n, allow);
    return cur;
  }

  private walk(input: Json[], node: PathNode, allow: boolean): Json[] {
    switch (node.type) {
      case 'list':
        return this.evalList(input, node, allow);
      case 'text':
        return [node.text];
      case 'number':
      case 'bool':
        return input.map(() => node.value);
      case 'field':
        return evalField(input, node.name, allow);
      case 'wildcard':
        return input.flatMap((v) =>
          Array.isArray(v)
            ? v
            : isMap(v)
              ? Object.keys(v)
                  .sort()
                  .map((k) => v[k])
              : [],
        );
      case 'recursive':
        return evalRecursive(input);
      case 'array':
        return evalArray(input, node.params);
      case 'union':
        return node.lists.flatMap((l) => this.evalList(input, l, allow));
      case 'filter':
        return this.evalFilter(input, node, allow);
      case 'identifier':
        if (node.name === 'end') throw new EvalError('not in range, nothing to end');
        if (node.name === 'range') return input; // `{.a}{range}` without a block: kubectl passes through
        throw new EvalError(`unrecognized identifier ${node.name}`);
    }
  }

  private evalFilter(
    input: Json[],
    node: Extract<PathNode, { type: 'filter' }>,
    allow: boolean,
  ): Json[] {
    const out: Json[] = [];
    for (const v of input) {
      if (v === null || v === undefined) continue;
      if (!Array.isArray(v))
        throw new EvalError(`${goText(v)} is not array or slice and cannot be filtered`);
      for (const item of v) {
        let lefts: Json[];
        try {
          lefts = this.evalList([item], node.left, allow);
        } catch (err) {
          if (node.op === 'exists') continue;
          throw err;
        }
        if (node.op === 'exists') {
          if (lefts.length > 0) out.push(item);
          continue;
        }
        if (lefts.length === 0) continue;
        if (lefts.length > 1) throw new EvalError('can only compare one element at a time');
        const rights = this.evalList([item], node.right, allow);
        if (rights.length === 0) continue;
        if (rights.length > 1) throw new EvalError('can only compare one element at a time');
        if (compare(lefts[0], rights[0], node.op)) out.push(item);
      }
    }
    return out;
  }
}

/** An evaluation failure, turned into JsonPathExecError by JsonPath. */
class EvalError extends Error {}

function evalField(input: Json[], name: string, allow: boolean): Json[] {
  const out: Json[] = [];
  for (const v of input) {
    if (isMap(v) && Object.hasOwn(v, name)) out.push(v[name]);
  }
  if (out.length === 0 && input.length > 0 && !allow) throw new EvalError(`${name} is not found`);
  return out;
}

function evalRecursive(input: Json[]): Json[] {
  const out: Json[] = [];
  for (const v of input) {
    const children = Array.isArray(v)
      ? v
      : isMap(v)
        ? Object.keys(v)
            .sort()
            .map((k) => v[k])
        : [];
    if (children.length) {
      out.push(v);
      out.push(...evalRecursive(children));
    }
  }
  return out;
}

function evalArray(input: Json[], template: [Param, Param, Param]): Json[] {
  const out: Json[] = [];
  for (const v of input) {
    if (v === null || v === undefined) continue;
    if (!Array.isArray(v)) throw new EvalError(`${goType(v)} is not array or slice`);
    const p = template.map((x) => ({ ...x })) as [Param, Param, Param];
    const len = v.length;
    if (!p[0].known) p[0].value = 0;
    if (p[0].value < 0) p[0].value += len;
    if (!p[1].known) p[1].value = len;
    if (p[1].value < 0 || (p[1].value === 0 && p[1].derived)) p[1].value += len;
    if (p[1].value === p[0].value) continue;
    if (p[0].value >= len || p[0].value < 0)
      throw new EvalError(`array index out of bounds: index ${p[0].value}, length ${len}`);
    if (p[1].value > len || p[1].value < 0)
      throw new EvalError(`array index out of bounds: index ${p[1].value - 1}, length ${len}`);
    if (p[0].value > p[1].value)
      throw new EvalError(
        `starting index ${p[0].value} is greater than ending index ${p[1].value}`,
      );
    let step = 1;
    if (p[2].known) {
      if (p[2].value <= 0) throw new EvalError('step must be > 0');
      step = p[2].value;
    }
    const slice = v.slice(p[0].value, p[1].value);
    for (let i = 0; i < slice.length; i += step) out.push(slice[i]);
  }
  return out;
}

function compare(a: Json, b: Json, op: string): boolean {
  const bothNumbers = typeof a === 'number' && typeof b === 'number';
  const bothStrings = typeof a === 'string' && typeof b === 'string';
  switch (op) {
    case '==':
      return bothNumbers || bothStrings || typeof a === typeof b
        ? JSON.stringify(a) === JSON.stringify(b)
        : incomparable(a, b);
    case '!=':
      return bothNumbers || bothStrings || typeof a === typeof b
        ? JSON.stringify(a) !== JSON.stringify(b)
        : incomparable(a, b);
    case '<':
    case '>':
    case '<=':
    case '>=': {
      if (!bothNumbers && !bothStrings) incomparable(a, b);
      const x = a as number | string;
      const y = b as number | string;
      return op === '<' ? x < y : op === '>' ? x > y : op === '<=' ? x <= y : x >= y;
    }
    default:
      throw new EvalError(`unrecognized filter operator ${op}`);
  }
}

function incomparable(a: Json, b: Json): never {
  throw new EvalError(`incompatible types for comparison: ${goType(a)} and ${goType(b)}`);
}

function goType(v: Json): string {
  if (typeof v === 'string') return 'string';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int64' : 'float64';
  if (typeof v === 'boolean') return 'bool';
  if (Array.isArray(v)) return '[]interface {}';
  if (isMap(v)) return 'map[string]interface {}';
  return 'interface {}';
}

/** A number as Go's fmt prints an int64 or float64 (%v). */
function goNumber(n: number): string {
  return String(n).replace(/e([+-])(\d)$/, 'e$10$2');
}

/** A scalar as text (jsonpath's evalToText). */
function goText(v: Json): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'number') return goNumber(v);
  return String(v);
}

const GO_HTML_ESCAPES: Record<string, string> = {
  '<': '\\u003c',
  '>': '\\u003e',
  '&': '\\u0026',
  '\u2028': '\\u2028',
  '\u2029': '\\u2029',
};

/** Copies a JSON value with every object's keys sorted (Go's order for maps). */
export function sortKeys(value: Json): Json {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (isMap(value))
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, sortKeys(value[k])]),
    );
  return value;
}

/**
 * JSON as Go's encoding/json writes a decoded object: map keys sorted, `<`
 * `>` `&` escaped as \u003c \u003e \u0026; compact, or indented by `indent`
 * spaces (kubectl -o json uses 4).
 */
export function goJSON(value: Json, indent = 0): string {
  return JSON.stringify(sortKeys(value), null, indent || undefined).replace(
    /[<>&\u2028\u2029]/g,
    (c) => GO_HTML_ESCAPES[c]!,
  );
}

/** How jsonpath prints one value: maps and lists as compact JSON, the rest as text. */
export function printValue(v: Json): string {
  return v !== null && typeof v === 'object' ? goJSON(v) : goText(v);
}

/**
 * A value as Go's fmt.Sprint prints it (kubectl's custom-columns cells):
 * maps as `map[k:v ...]` (keys sorted), lists as `[a b]`, null as `<nil>`.
 */
export function goSprint(v: Json): string {
  if (v === null || v === undefined) return '<nil>';
  if (Array.isArray(v)) return `[${v.map(goSprint).join(' ')}]`;
  if (isMap(v))
    return `map[${Object.keys(v)
      .sort()
      .map((k) => `${k}:${goSprint(v[k])}`)
      .join(' ')}]`;
  return goText(v);
}

/**
 * kubectl's relaxed path for --sort-by and custom-columns: `a.b`, `.a.b`,
 * `{a.b}` and `{.a.b}` all mean `{.a.b}`.
 * @throws JsonPathParseError for other forms.
 */
export function relaxedJsonPath(expr: string): string {
  if (expr === '') return expr;
  const m = /^\{\.?([^{}]+)\}$|^\.?([^{}]+)$/.exec(expr);
  if (!m)
    throw new JsonPathParseError(
      expr,
      "unexpected path string, expected a 'name1.name2' or '.name1.name2' or '{name1.name2}' or '{.name1.name2}'",
    );
  return `{.${m[1] || m[2]}}`;
}

/** Parses a template. @throws JsonPathParseError */
export function parseJsonPath(template: string): JsonPath {
  return new JsonPath(template);
}

const QUANTITY_SUFFIX: Record<string, number> = {
  '': 1,
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** A Kubernetes resource quantity ("100m", "1Gi", "2") as a number, or undefined. */
export function parseQuantity(s: string): number | undefined {
  const m = /^([+-]?(?:\d+\.?\d*|\.\d+))(?:([numkMGTPE]|[KMGTPE]i)|[eE]([+-]?\d+))?$/.exec(s);
  if (!m) return undefined;
  const base = Number(m[1]);
  if (m[3] !== undefined) return base * 10 ** Number(m[3]);
  return base * QUANTITY_SUFFIX[m[2] ?? '']!;
}

/**
 * kubectl's --sort-by order of two values (sorter.go isLess, as kubectl
 * 1.32 sorts): numbers by value, strings as quantities when both are ("7" <
 * "11", "500m" < "1"), else in byte order ("w10" < "w2"); false before true;
 * lists element by element; null first.
 */
export function sortLess(a: Json, b: Json): boolean {
  if (a === null || a === undefined) return !(b === null || b === undefined);
  if (b === null || b === undefined) return false;
  if (typeof a === 'number' && typeof b === 'number') return a < b;
  if (typeof a === 'string' && typeof b === 'string') {
    const qa = parseQuantity(a);
    const qb = parseQuantity(b);
    if (qa !== undefined && qb !== undefined) return qa < qb;
    return a < b; // byte order, as kubectl 1.32 ("w10" < "w2")
  }
  if (typeof a === 'boolean' && typeof b === 'boolean') return !a && b;
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.min(a.length, b.length); i++) if (!sortLess(a[i], b[i])) return false;
    return true;
  }
  return false;
}
