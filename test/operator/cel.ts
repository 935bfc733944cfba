/**
 * The subset of CEL our CRDs' x-kubernetes-validations use: `self` field paths, `has()`,
 * `size()` of a list, string or map, string/boolean/integer literals, `==`, `!=`, `!`, `&&`, `||`
 * and parentheses. A rule outside the subset
 * throws when the emulator loads the CRD, so the subset cannot silently pass rules.
 *
 * As in the API server, object properties are reached as fields only (`self.a.b`, never
 * `self.a['b']`, which CEL allows on maps alone), with Kubernetes' escaping of property names:
 * `__dash__` for "-", `__dot__` for ".", `__slash__` for "/", `__` for "_".
 */
type Value = unknown;
type Node =
  | { op: 'or' | 'and' | 'eq' | 'ne'; left: Node; right: Node }
  | { op: 'not'; arg: Node }
  | { op: 'has'; path: string[] }
  | { op: 'size'; arg: Node }
  | { op: 'path'; path: string[] }
  | { op: 'lit'; value: Value };

const TOKEN = /\s*(\|\||&&|==|!=|!|\(|\)|\.|'[^']*'|"[^"]*"|[0-9]+|[A-Za-z_][A-Za-z0-9_]*)/y;

/** Kubernetes' CEL property-name escaping, undone. */
export function unescapeProperty(name: string): string {
  return name.replace(/__(dash|dot|slash)__|__/g, (m, word: string | undefined) => (word === 'dash' ? '-' : word === 'dot' ? '.' : word === 'slash' ? '/' : '_'));
}

function tokenize(src: string): string[] {
  const tokens: string[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < src.length) {
    if (/^\s*$/.test(src.slice(TOKEN.lastIndex))) break;
    const m = TOKEN.exec(src);
    if (!m?.[1]) throw new Error(`CEL subset: cannot read "${src.slice(TOKEN.lastIndex)}" in ${src}`);
    tokens.push(m[1]);
  }
  return tokens;
}

export function parseCel(src: string): Node {
  const tokens = tokenize(src);
  let i = 0;
  const peek = () => tokens[i];
  const take = (expected?: string) => {
    const t = tokens[i++];
    if (t === undefined || (expected !== undefined && t !== expected)) throw new Error(`CEL subset: expected ${expected ?? 'a token'} at ${i} in ${src}`);
    return t;
  };
  const path = (): string[] => {
    take('self');
    const parts: string[] = [];
    while (peek() === '.') {
      take();
      parts.push(unescapeProperty(take()));
    }
    return parts;
  };
  const primary = (): Node => {
    const t = peek();
    if (t === 'has') {
      take();
      take('(');
      const p = path();
      take(')');
      return { op: 'has', path: p };
    }
    if (t === 'size') {
      take();
      take('(');
      const arg = or();
      take(')');
      return { op: 'size', arg };
    }
    if (t === '(') {
      take();
      const e = or();
      take(')');
      return e;
    }
    if (t === 'self') return { op: 'path', path: path() };
    if (t === 'true' || t === 'false' || (t && /^['"]/.test(t))) {
      take();
      return { op: 'lit', value: t === 'true' ? true : t === 'false' ? false : t.slice(1, -1) };
    }
    if (t && /^[0-9]+$/.test(t)) {
      take();
      return { op: 'lit', value: Number(t) };
    }
    throw new Error(`CEL subset: unexpected ${t ?? 'end'} in ${src}`);
  };
  const cmp = (): Node => {
    const left = primary();
    if (peek() === '==' || peek() === '!=') return { op: take() === '==' ? 'eq' : 'ne', left, right: primary() };
    return left;
  };
  const unary = (): Node => (peek() === '!' ? (take(), { op: 'not', arg: unary() }) : cmp());
  const and = (): Node => {
    let left = unary();
    while (peek() === '&&') left = (take(), { op: 'and', left, right: unary() });
    return left;
  };
  const or = (): Node => {
    let left = and();
    while (peek() === '||') left = (take(), { op: 'or', left, right: and() });
    return left;
  };
  const tree = or();
  if (i !== tokens.length) throw new Error(`CEL subset: trailing "${tokens.slice(i).join(' ')}" in ${src}`);
  return tree;
}

function lookup(self: Value, path: string[]): { found: boolean; value: Value } {
  let cur = self;
  for (const p of path) {
    if (typeof cur !== 'object' || cur === null || !(p in cur)) return { found: false, value: undefined };
    cur = (cur as Record<string, Value>)[p];
  }
  return { found: true, value: cur };
}

export function evalCel(node: Node, self: Value): Value {
  switch (node.op) {
    case 'or':
      return evalCel(node.left, self) === true || evalCel(node.right, self) === true;
    case 'and':
      return evalCel(node.left, self) === true && evalCel(node.right, self) === true;
    case 'eq':
      return evalCel(node.left, self) === evalCel(node.right, self);
    case 'ne':
      return evalCel(node.left, self) !== evalCel(node.right, self);
    case 'not':
      return evalCel(node.arg, self) !== true;
    case 'has':
      return lookup(self, node.path).found;
    case 'size': {
      const v = evalCel(node.arg, self);
      if (Array.isArray(v) || typeof v === 'string') return v.length;
      if (typeof v === 'object' && v !== null) return Object.keys(v).length;
      throw new Error('size() of a value that is neither a list, a string nor a map');
    }
    case 'path': {
      const r = lookup(self, node.path);
      if (!r.found) throw new Error(`no such key: ${node.path.join('.')}`);
      return r.value;
    }
    case 'lit':
      return node.value;
  }
}
