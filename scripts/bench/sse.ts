/** One Server-Sent Event. */
export interface SseEvent {
  id?: string;
  event: string;
  data: string;
}

/**
 * An incremental Server-Sent Events parser, as the EventSource spec reads a
 * stream: fields id, event and data (several data lines joined by LF),
 * comments and retry ignored, lines ending in LF or CRLF, an event
 * dispatched at a blank line when it has data. Text may arrive cut anywhere.
 */
export class SseParser {
  private buffer = '';
  private current: SseEvent = { event: 'message', data: '' };
  private hasData = false;

  /** Feeds text; returns the events it completed. */
  push(text: string): SseEvent[] {
    this.buffer += text;
    const out: SseEvent[] = [];
    let newline: number;
    while ((newline = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, newline).replace(/\r$/, '');
      this.buffer = this.buffer.slice(newline + 1);
      if (line === '') {
        if (this.hasData) out.push(this.current);
        this.current = { event: 'message', data: '' };
        this.hasData = false;
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'data') {
        this.current.data = this.hasData ? `${this.current.data}\n${value}` : value;
        this.hasData = true;
      } else if (field === 'event') {
        this.current.event = value;
      } else if (field === 'id') {
        this.current.id = value;
      }
    }
    return out;
  }
}
