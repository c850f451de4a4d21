// A windowed list: only the items in and near the viewport are in the DOM,
// the rest are two spacers sized from measured (or estimated) heights, so a
// room of thousands of messages scrolls like one of fifty.
//
// It keeps the reader's place: when older items are added above, or an item
// above the viewport changes height, the first visible item stays where it
// was on screen. At the bottom it follows new items; scrolled up, it does
// not move (the view offers a "new messages" button instead).

import { html, useEffect, useLayoutEffect, useRef, useState } from '../vendor/preact-htm.mjs';

const OVERSCAN = 600; // pixels rendered beyond the viewport, each way
const AT_BOTTOM = 48; // within this many pixels of the end counts as "at the bottom"

/**
 * @param {{
 *   items: any[], keyOf: (it: any) => string, render: (it: any) => any,
 *   estimate?: number, onNearTop?: () => void, onScrollState?: (s: {atBottom: boolean, lastVisible: any}) => void,
 *   api?: {current: any}, label?: string, class?: string
 * }} props
 */
export function VirtualList(props) {
  const { items, keyOf, render, estimate = 64 } = props;
  const scroller = useRef(null);
  const heights = useRef(new Map()); // key -> measured px
  const atBottom = useRef(true); // follow new items
  const lastTop = useRef(0); // scrollTop when a render last placed the list
  const anchor = useRef(null); // {key, delta, top}: first visible item, its offset from the viewport top, and scrollTop then
  const [view, setView] = useState({ top: 0, height: 800 });
  const [, setTick] = useState(0);
  const raf = useRef(0);

  // Offsets of every item from measured heights (estimates where unmeasured).
  const offsets = new Array(items.length + 1);
  offsets[0] = 0;
  for (let i = 0; i < items.length; i++) {
    const h = heights.current.get(keyOf(items[i]));
    offsets[i + 1] = offsets[i] + (h === undefined ? estimate : h);
  }
  const total = offsets[items.length];
  const indexAt = (y) => {
    let lo = 0;
    let hi = items.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (offsets[mid + 1] <= y) lo = mid + 1;
      else hi = mid;
    }
    return Math.min(lo, Math.max(0, items.length - 1));
  };
  const start = items.length ? indexAt(Math.max(0, view.top - OVERSCAN)) : 0;
  const end = items.length ? indexAt(view.top + view.height + OVERSCAN) + 1 : 0;

  const readScroll = () => {
    const el = scroller.current;
    if (!el) return;
    atBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight <= AT_BOTTOM;
    // The anchor: the first item whose bottom is below the viewport's top.
    const i = items.length ? indexAt(el.scrollTop) : -1;
    anchor.current = i >= 0 ? { key: keyOf(items[i]), delta: offsets[i] - el.scrollTop, top: el.scrollTop } : null;
    const lastIdx = items.length ? indexAt(el.scrollTop + el.clientHeight - 1) : -1;
    if (props.onScrollState) {
      props.onScrollState({ atBottom: atBottom.current, lastVisible: lastIdx >= 0 ? items[lastIdx] : null });
    }
    if (props.onNearTop && el.scrollTop < OVERSCAN) props.onNearTop();
  };

  const onScroll = () => {
    if (raf.current) return;
    raf.current = requestAnimationFrame(() => {
      raf.current = 0;
      const el = scroller.current;
      if (!el) return;
      readScroll();
      lastTop.current = el.scrollTop;
      setView({ top: el.scrollTop, height: el.clientHeight });
    });
  };

  // After each render: measure what is in the DOM, then put the reader back
  // where they were (or at the bottom when following).
  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    let grew = false;
    for (const child of el.querySelectorAll(':scope > .vitem')) {
      const k = child.dataset.key;
      const h = child.offsetHeight;
      if (heights.current.get(k) !== h) {
        heights.current.set(k, h);
        grew = true;
      }
    }
    if (grew) {
      setTick((t) => t + 1); // spacers from the new heights; this effect runs again
      return;
    }
    // Following, but the reader scrolled up since we last looked (their
    // scroll event not handled yet when this render came): read where they
    // are instead of pulling them back to the bottom.
    if (atBottom.current && el.scrollTop < lastTop.current - 1) readScroll();
    if (atBottom.current) {
      const want = el.scrollHeight - el.clientHeight;
      if (Math.abs(el.scrollTop - want) > 1) el.scrollTop = want;
    } else if (anchor.current) {
      const a = anchor.current;
      const i = items.findIndex((it) => keyOf(it) === a.key);
      if (i >= 0) {
        // The reader may have scrolled since the anchor was read (its scroll
        // event not handled yet when this render came, e.g. on a busy
        // machine): keep that movement instead of undoing it.
        const delta = a.delta - (el.scrollTop - a.top);
        const want = offsets[i] - delta;
        if (Math.abs(el.scrollTop - want) > 1) el.scrollTop = want;
        anchor.current = { key: a.key, delta, top: el.scrollTop };
      }
    }
    lastTop.current = el.scrollTop;
    if (el.clientHeight !== view.height || Math.abs(el.scrollTop - view.top) > 1) {
      setView({ top: el.scrollTop, height: el.clientHeight });
    } else {
      readScroll();
    }
  });

  useEffect(() => {
    const el = scroller.current;
    const ro = new ResizeObserver(() => onScroll());
    ro.observe(el);
    return () => {
      ro.disconnect();
      cancelAnimationFrame(raf.current);
    };
  }, []);

  if (props.api) {
    props.api.current = {
      /** Scrolls so that the item with this key is at the top. */
      scrollToKey(key) {
        const el = scroller.current;
        const i = items.findIndex((it) => keyOf(it) === key);
        if (!el || i < 0) return false;
        atBottom.current = false;
        el.scrollTop = Math.max(0, offsets[i] - 8);
        anchor.current = { key, delta: offsets[i] - el.scrollTop, top: el.scrollTop };
        setView({ top: el.scrollTop, height: el.clientHeight });
        return true;
      },
      /** Scrolls to the end and follows new items again. */
      scrollToBottom() {
        const el = scroller.current;
        if (!el) return;
        atBottom.current = true;
        el.scrollTop = el.scrollHeight;
        setTick((t) => t + 1);
      },
    };
  }

  const shown = items.slice(start, end);
  return html`<div
    class=${`vlist ${props.class || ''}`}
    ref=${scroller}
    onScroll=${onScroll}
    tabindex="0"
    role="region"
    aria-label=${props.label || 'List'}
  >
    <div class="vspacer" style=${{ height: `${offsets[start]}px` }}></div>
    ${shown.map((it) => html`<div class="vitem" key=${keyOf(it)} data-key=${keyOf(it)}>${render(it)}</div>`)}
    <div class="vspacer" style=${{ height: `${total - offsets[end]}px` }}></div>
  </div>`;
}
