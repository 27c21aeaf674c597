/** One Server-Sent Event: its name (`message` when unnamed), id and data. */
export interface ServerEvent {
  event: string;
  id?: string;
  data: string;
}

/**
 * Server-Sent Events read as the EventSource spec reads them: fields id,
 * event and data (several data lines joined by LF), lines ending in LF or
 * CRLF, an event dispatched at a blank line when it has data, text cut
 * anywhere. Comments (the keep-alives) go to `onComment`. The one parser of
 * the API's streams: the CLI, the dashboard (in the browser: no imports),
 * the bench and the tests read with it.
 */
export class SseParser {
  private buffer = '';
  private current: { event?: string; id?: string; data?: string } = {};

  constructor(
    private readonly onEvent: (event: ServerEvent) => void,
    private readonly onComment?: (text: string) => void,
  ) {}

  push(text: string): void {
    this.buffer += text;
    for (let newline = this.buffer.indexOf('\n'); newline >= 0; newline = this.buffer.indexOf('\n')) {
      const line = this.buffer.slice(0, newline).replace(/\r$/, '');
      this.buffer = this.buffer.slice(newline + 1);
      if (line === '') {
        const { event, id, data } = this.current;
        this.current = {};
        if (data !== undefined) this.onEvent({ event: event ?? 'message', data, ...(id !== undefined ? { id } : {}) });
      } else if (line.startsWith(':')) {
        this.onComment?.(line.slice(1).trim());
      } else {
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'data') this.current.data = this.current.data === undefined ? value : `${this.current.data}\n${value}`;
        else if (field === 'event') this.current.event = value;
        else if (field === 'id') this.current.id = value;
      }
    }
  }
}
