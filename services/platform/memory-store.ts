/**
 * The in-memory map behind the catalogue stores. Async on purpose: the
 * interfaces it backs are meant for a durable store later.
 */
export class MemoryRecordStore<T> {
  private readonly records = new Map<string, T>();

  constructor(seed: Record<string, T> = {}) {
    for (const [id, record] of Object.entries(seed)) this.records.set(id, record);
  }

  async get(id: string): Promise<T | undefined> {
    return this.records.get(id);
  }

  async put(id: string, record: T): Promise<void> {
    this.records.set(id, record);
  }
}
