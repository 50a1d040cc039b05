/** A small insertion-ordered set that forgets its oldest entries. */
export class BoundedSet {
  private readonly items = new Set<string>();
  constructor(private readonly max: number) {}
  has(key: string): boolean {
    return this.items.has(key);
  }
  add(key: string): void {
    this.items.delete(key);
    this.items.add(key);
    if (this.items.size > this.max) {
      const oldest = this.items.values().next();
      if (oldest.done !== true) this.items.delete(oldest.value);
    }
  }
  delete(key: string): void {
    this.items.delete(key);
  }
  deleteWhere(test: (key: string) => boolean): void {
    for (const key of this.items) if (test(key)) this.items.delete(key);
  }
}
