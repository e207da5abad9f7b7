export interface ViewCounts {
  userviews: number;
  assetviews: number;
}

/** What reporting needs of its storage; narrow so a durable store can replace memory. */
export interface ViewStore {
  record(assetId: string, userId: string): Promise<ViewCounts>;
  counts(assetId: string, userId: string): Promise<ViewCounts>;
  userViews(userId: string): Promise<number | undefined>;
  assetViews(assetId: string): Promise<number | undefined>;
}

export function createMemoryViewStore(): ViewStore {
  const byUser = new Map<string, number>();
  const byAsset = new Map<string, number>();
  const counts = async (assetId: string, userId: string): Promise<ViewCounts> => ({
    userviews: byUser.get(userId) ?? 0,
    assetviews: byAsset.get(assetId) ?? 0,
  });
  return {
    async record(assetId, userId) {
      byUser.set(userId, (byUser.get(userId) ?? 0) + 1);
      byAsset.set(assetId, (byAsset.get(assetId) ?? 0) + 1);
      return counts(assetId, userId);
    },
    counts,
    async userViews(userId) {
      return byUser.get(userId);
    },
    async assetViews(assetId) {
      return byAsset.get(assetId);
    },
  };
}
