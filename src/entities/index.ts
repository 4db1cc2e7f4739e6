import { User } from './User.js';
import { Wallet } from './Wallet.js';
import { Auction } from './Auction.js';
import { Bid } from './Bid.js';
import { OutboxEvent } from './OutboxEvent.js';
import { DeadlineWakeup } from './DeadlineWakeup.js';

export { User, Wallet, Auction, Bid, OutboxEvent, DeadlineWakeup };
export const entities = [User, Wallet, Auction, Bid, OutboxEvent, DeadlineWakeup];
