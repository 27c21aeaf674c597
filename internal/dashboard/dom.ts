/**
 * A few lines of DOM building in place of a view library: pages build their
 * parts with h() and replace them when data comes. Never HTML strings (no
 * injection) and never style attributes (the page's CSP refuses them; sizes
 * are set through the CSSOM, see setWidth).
 */
export type Child = Node | string | number | null | undefined | false | readonly Child[];
export type Handler = (event: Event) => void;
export type Props = Record<string, string | number | boolean | Handler | null | undefined>;

/** Properties set as such, not as attributes (they are the live state of a form control). */
const PROPERTIES = new Set(['value', 'checked', 'disabled', 'selected']);

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Props | null = null, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === null || value === undefined) continue;
    if (typeof value === 'function') el.addEventListener(key.replace(/^on/, '').toLowerCase(), value);
    else if (PROPERTIES.has(key)) Reflect.set(el, key, value);
    else if (value !== false) el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

export function append(el: Element, children: readonly Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child as readonly Child[]);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** Replaces an element's content. */
export function fill(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, children);
}

/** `width: N%` without a style attribute. */
export function setWidth<E extends HTMLElement>(el: E, fraction: number): E {
  el.style.width = `${Math.max(0, Math.min(1, fraction)) * 100}%`;
  return el;
}

/** A bar filled to `used / total`. */
export function meter(used: number, total: number): HTMLElement {
  return h('div', { class: 'meter', role: 'meter', 'aria-valuemin': 0, 'aria-valuemax': total, 'aria-valuenow': used }, setWidth(h('span'), total > 0 ? used / total : 0));
}

/** A sortable table: headers toggle the sort, kept by the caller (in the URL). */
export interface Column<T> {
  key: string;
  label: string;
  cell(row: T): Child;
  /** What the column sorts by; absent: not sortable. */
  sortBy?(row: T): string | number;
  numeric?: boolean;
  className?: string;
}

export interface Sort {
  key: string;
  desc: boolean;
}

export function sortRows<T>(rows: readonly T[], columns: readonly Column<T>[], sort: Sort | undefined): T[] {
  const column = columns.find((c) => c.key === sort?.key);
  const by = column?.sortBy;
  if (!sort || !by) return [...rows];
  const sign = sort.desc ? -1 : 1;
  return [...rows].sort((a, b) => {
    const x = by(a);
    const y = by(b);
    return sign * (typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y)));
  });
}

export function table<T>(
  columns: readonly Column<T>[],
  rows: readonly T[],
  options: { sort?: Sort; onSort?: (sort: Sort) => void; empty?: string; rowKey?: (row: T) => string } = {},
): HTMLTableElement {
  const { sort, onSort } = options;
  const head = columns.map((c) => {
    const sorted = sort?.key === c.key;
    const classes = [c.numeric ? 'num' : '', c.sortBy && onSort ? 'sortable' : '', sorted ? (sort?.desc ? 'sorted-desc' : 'sorted-asc') : ''].filter(Boolean).join(' ');
    const click = c.sortBy && onSort ? () => onSort({ key: c.key, desc: sorted ? !sort?.desc : false }) : null;
    return h('th', { class: classes || null, 'data-key': c.key, 'aria-sort': sorted ? (sort?.desc ? 'descending' : 'ascending') : null, onclick: click }, c.label);
  });
  const body =
    rows.length === 0
      ? [h('tr', null, h('td', { class: 'empty', colspan: columns.length }, options.empty ?? 'Nothing to show'))]
      : sortRows(rows, columns, sort).map((row) =>
          h(
            'tr',
            { 'data-key': options.rowKey?.(row) ?? null },
            columns.map((c) => h('td', { class: [c.numeric ? 'num' : '', c.className ?? ''].filter(Boolean).join(' ') || null }, c.cell(row))),
          ),
        );
  return h('table', null, h('thead', null, h('tr', null, head)), h('tbody', null, body));
}
