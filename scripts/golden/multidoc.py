"""`multi_doc`: the answer needs several documents reconciled (an amendment overrides a contract,
a later email reassigns a role, a rejected proposal changes nothing). The final value appears
verbatim only in the document that settles it; the earlier documents state a superseded value.
"""
from golden.common import chunk, item

# (question, answer, [(source, text, is_gold)])
CASES = [
    ("What is the final amount payable on invoice INV-4471?", "$16,900", [
        ("inv-4471", "Invoice INV-4471 from Ridgeback Supply Co. to Lumen Dental Group, dated 3 May 2024, for "
         "dental chairs and installation. Amount payable: $18,400, due within 30 days.", True),
        ("credit-note-cn-208", "Credit note CN-208, dated 10 May 2024, against invoice INV-4471: one chair was "
         "returned. The revised amount payable on INV-4471 is $16,900.", True),
        ("inv-4502", "Invoice INV-4502 from Ridgeback Supply Co. to Lumen Dental Group, dated 20 May 2024, for "
         "sterilisation pouches. Amount payable: $2,150.", False)]),
    ("On what date will purchase order PO-5120 now be delivered?", "3 June 2024", [
        ("po-5120", "Purchase order PO-5120 from Kestrel Foods to Ostrava Packaging: 9,000 film lids, delivery on "
         "12 May 2024.", True),
        ("change-order-co-5120-1", "Change order 1 to PO-5120, agreed by both parties on 2 May 2024: the "
         "delivery date moves from 12 May 2024 to 3 June 2024 because the lid design changed.", True),
        ("po-5133", "Purchase order PO-5133 from Kestrel Foods to Ostrava Packaging: 4,000 trays, delivery on "
         "20 May 2024.", False)]),
    ("What unit price applies under the Tessellate Software support contract after all amendments?", "$3.95", [
        ("support-contract", "Support contract between Granite Peak Insurance and Tessellate Software: support "
         "is charged at $4.20 per user per month.", True),
        ("amendment-1", "Amendment No. 1 to the support contract between Granite Peak Insurance and Tessellate "
         "Software: from 1 January 2023 the price falls to $4.05 per user per month.", True),
        ("amendment-2", "Amendment No. 2 to the support contract between Granite Peak Insurance and Tessellate "
         "Software, replacing Amendment No. 1: from 1 January 2024 the price is $3.95 per user per month.", True)]),
    ("Who is now the account manager for Lumen Dental Group at Ridgeback Supply Co.?", "Colm Brady", [
        ("welcome-letter", "Welcome letter from Ridgeback Supply Co. to Lumen Dental Group, January 2024: your "
         "account manager is Priya Nand, who will visit every quarter.", True),
        ("email-2024-06-02", "Email from Ridgeback Supply Co. to Lumen Dental Group, 2 June 2024: Priya Nand has "
         "moved to our Seattle branch. From today your account manager is Colm Brady.", True),
        ("org-chart", "Ridgeback Supply Co. sales team: Priya Nand (Seattle), Dana Whitlow (Portland), Marcus Hale "
         "(Boise).", False)]),
    ("Where will the Bellweather Solar investor day be held?", "the Harbour Conference Centre", [
        ("invite", "Invitation: the Bellweather Solar investor day takes place on 14 November in Room 4B of our "
         "Phoenix head office.", True),
        ("update", "Update to the investor day invitation: because of the number of registrations, the Bellweather "
         "Solar investor day moves from Room 4B to the Harbour Conference Centre. The date is unchanged.", True),
        ("agenda", "Investor day agenda: 09:00 welcome, 10:00 storage projects, 12:00 lunch, 14:00 questions.",
         False)]),
    ("What monthly rent does Lantern Bakery Ltd pay from 1 January 2025?", "$7,610", [
        ("lease", "Commercial lease, Unit 4, 18 Quayside Road: Lantern Bakery Ltd pays Harbourview Properties a "
         "monthly rent of $7,250. The rent is reviewed every January.", True),
        ("rent-review-2025", "Rent review letter from Harbourview Properties to Lantern Bakery Ltd: following the "
         "annual review, the monthly rent from 1 January 2025 is $7,610.", True),
        ("service-charge", "Service charge notice for Unit 4, 18 Quayside Road: the 2025 service charge is $310 "
         "per month, billed separately from rent.", False)]),
    ("How many cartons of shipment ASN-4120 were accepted into stock?", "37 cartons", [
        ("packing-list", "Packing list for shipment ASN-4120 from Larchmont Textiles: 40 cartons of table linen.",
         True),
        ("damage-report", "Damage report for shipment ASN-4120: 3 cartons arrived wet and were rejected at the "
         "dock.", True),
        ("receiving-note", "Receiving note for shipment ASN-4120: after the rejections in the damage report, 37 "
         "cartons were accepted into stock.", True)]),
    ("What is the nightly hotel limit for staff travelling to London under the Merrow Insurance travel policy?",
     "$210", [
        ("travel-policy", "Merrow Insurance travel policy: hotel stays are reimbursed up to $180 per night in "
         "every city.", True),
        ("memo-london", "Memo from the Merrow Insurance finance director: with immediate effect, the nightly "
         "hotel limit for London is raised to $210. All other cities keep the limit in the travel policy.", True),
        ("memo-meals", "Memo from the Merrow Insurance finance director: the daily meal allowance stays at $60.",
         False)]),
    ("How many licensed seats does Saltbridge Media have after the annual true-up?", "290 seats", [
        ("order-form", "Order form: Saltbridge Media buys 250 seats of the Halcyon design suite for one year.",
         True),
        ("true-up-report", "Annual true-up report for Saltbridge Media: 40 extra seats were in use and have been "
         "added, bringing the licence to 290 seats in total.", True),
        ("renewal-quote", "Renewal quote for Copperline Data: 120 seats of the Halcyon design suite.", False)]),
    ("What is the agreed completion date for the Dunmore Civil Works bridge survey?", "11 November 2024", [
        ("sow", "Statement of work: Dunmore Civil Works will complete the bridge survey for Orrin Valley Farms by "
         "30 September 2024.", True),
        ("cr-7", "Change request CR-7, signed by both parties: the bridge survey completion date is extended by six "
         "weeks to 11 November 2024.", True),
        ("email-proposal", "Email from Dunmore Civil Works proposing a further delay of the bridge survey to 25 "
         "November 2024.", False),
        ("email-reply", "Reply from Orrin Valley Farms: we do not accept a further delay; the date in CR-7 stands.",
         True)]),
]


# second batch (multi-11 .. multi-20): same patterns, new companies and people
MORE_CASES = [
    ("How much does Tilbrook Joinery now owe on invoice INV-7730?", "$9,125", [
        ("inv-7730", ("Invoice INV-7730 from Blackthorn Electrical Wholesale to Tilbrook Joinery, dated 7 October "
         "2024, for cable drums and conduit. Amount payable: $9,860, due within 45 days."), True),
        ("credit-note-cn-415", ("Credit note CN-415, dated 15 October 2024, against invoice INV-7730: two cable "
         "drums were short-delivered. The revised amount payable on INV-7730 is $9,125."), True),
        ("credit-note-cn-419", ("Credit note CN-419, dated 18 October 2024, against invoice INV-7784: a pricing "
         "error was corrected. The revised amount payable on INV-7784 is $3,040."), False)]),
    ("How many bottles does purchase order PO-6240 now cover?", "7,500 bottles", [
        ("po-6240", ("Purchase order PO-6240 from Kilnsey Cider to Oldcastle Glassworks: 6,000 amber bottles, "
         "delivery on 9 September 2024."), True),
        ("change-order-co-6240-1", ("Change order 1 to PO-6240, agreed by both parties on 21 August 2024: the "
         "quantity rises from 6,000 to 7,500 bottles to cover the autumn pressing."), True),
        ("change-order-co-6240-2", ("Change order 2 to PO-6240, proposed on 30 August 2024: cut the quantity to "
         "5,000 bottles. Declined by Oldcastle Glassworks; not in effect."), False)]),
    ("What hourly rate applies under the Ormsby Data Consulting agreement after all amendments?", "$147", [
        ("consulting-agreement", ("Consulting agreement between Cinderford Rail Services and Ormsby Data "
         "Consulting: consultants are billed at $138 per hour."), True),
        ("amendment-1", ("Amendment No. 1 to the consulting agreement between Cinderford Rail Services and Ormsby "
         "Data Consulting: from 1 April 2023 the rate rises to $152 per hour."), True),
        ("amendment-2", ("Amendment No. 2 to the consulting agreement between Cinderford Rail Services and Ormsby "
         "Data Consulting, replacing Amendment No. 1: from 1 April 2024 the rate is $147 per hour."), True)]),
    ("Who is now the site safety officer for the Heathcote depot extension?", "Halina Kowalczyk", [
        ("project-charter", ("Project charter, Heathcote depot extension, built by Mortlake Builders for Norland "
         "Distribution: the site safety officer is Gareth Mwangi."), True),
        ("notice-2024-09-16", ("Notice from Mortlake Builders, 16 September 2024: Gareth Mwangi has moved to the "
         "Eastgate tunnel job. From today the Heathcote site safety officer is Halina Kowalczyk."), True),
        ("site-contacts", ("Heathcote depot extension contacts: site manager Rhys Tolland, quantity surveyor Anouk "
         "Verhoeven, safety officer Gareth Mwangi."), False)]),
    ("Where will the Lochbrae Water annual general meeting be held?", "the Old Corn Exchange", [
        ("notice-of-meeting", ("Notice of meeting: the Lochbrae Water annual general meeting will be held on 22 "
         "October at 11:00 in the boardroom of our Elgin office."), True),
        ("supplementary-notice", ("Supplementary notice: because of demand, the Lochbrae Water annual general "
         "meeting moves from the boardroom to the Old Corn Exchange. The date and time are unchanged."), True),
        ("proxy-form", ("Proxy form for the annual general meeting: return it by 18 October to appoint the chair or "
         "another person to vote on your behalf."), False)]),
    ("What weekly fee does Hedgerow Florists pay for storage bay 12 from 1 March 2025?", "$186", [
        ("storage-licence", ("Storage licence, bay 12, Millrace Trading Estate: Hedgerow Florists pays Wagtail Self "
         "Storage a weekly fee of $172. The fee is reviewed every March."), True),
        ("fee-review-2025", ("Fee review letter from Wagtail Self Storage to Hedgerow Florists: following the annual "
         "review, the weekly fee for bay 12 from 1 March 2025 is $186."), True),
        ("contents-insurance", ("Contents insurance notice for bay 12, Millrace Trading Estate: cover costs $14 per "
         "week from March 2025, billed separately from the licence fee."), False)]),
    ("How many drums of consignment BL-6618 were released to stock?", "56 drums", [
        ("bill-of-lading", "Bill of lading BL-6618 from Ardley Chemicals: 60 drums of food-grade glycerine.", True),
        ("quarantine-report", ("Quarantine report for consignment BL-6618: 4 drums were found leaking and are held "
         "back for return."), True),
        ("goods-in-record", ("Goods-in record for consignment BL-6618: after the drums held in quarantine, 56 drums "
         "were released to stock."), True)]),
    ("What mileage rate does Garrowby Logistics pay staff for business trips in their own electric cars?",
     "$0.52", [
        ("expenses-policy", ("Garrowby Logistics expenses policy: business mileage in a private car is reimbursed "
         "at $0.45 per mile, whatever the fuel."), True),
        ("memo-electric", ("Memo from the Garrowby Logistics head of finance: from 1 July, mileage in a private "
         "electric car is reimbursed at $0.52 per mile. Other cars keep the rate in the expenses policy."), True),
        ("memo-parking", ("Memo from the Garrowby Logistics head of finance: parking at client sites is reimbursed "
         "up to $25 per day."), False)]),
    ("How many vans does the Trevanion Removals fleet policy cover after the mid-term adjustment?", "22 vans", [
        ("policy-schedule", ("Policy schedule: Gannet Mutual insures 18 vans of the Trevanion Removals fleet for "
         "the year from 1 February 2024."), True),
        ("mid-term-adjustment", ("Mid-term adjustment for Trevanion Removals: 4 vans bought in August have been "
         "added, bringing the policy to 22 vans in total."), True),
        ("fleet-quote", ("Fleet insurance quote from Gannet Mutual for Brisk Courier Co.: 12 vans, premium on "
         "request."), False)]),
    ("What fixed fee is agreed for the Stanway Racking Systems warehouse installation?", "$51,300", [
        ("accepted-quote", ("Accepted quotation: Stanway Racking Systems will install the warehouse racking for "
         "Cresswell Homewares for a fixed fee of $48,000."), True),
        ("variation-v-2", ("Variation V-2, signed by both parties: six extra racking bays are added and the fixed "
         "fee rises to $51,300."), True),
        ("email-proposal", ("Email from Stanway Racking Systems asking to raise the fixed fee again, to $53,900, "
         "because steel prices have gone up."), False),
        ("email-reply", ("Reply from Cresswell Homewares: we do not agree to a further increase; the fee in "
         "variation V-2 stands."), True)]),
]


def _build(cases, rng, first: int) -> list[dict]:
    """One item per case, ids from multi-<first>; documents shuffled with the seeded rng so the settling
    document is not always last."""
    items = []
    for i, (question, answer, docs) in enumerate(cases):
        order = list(range(len(docs)))
        rng.shuffle(order)
        chunks = [chunk(f"d{k + 1}", docs[k][1], docs[k][0]) for k in order]
        gold = [f"d{k + 1}" for k in range(len(docs)) if docs[k][2]]
        items.append(item(f"multi-{first + i:02d}", "multi_doc", question, [answer], "contains", chunks, gold,
                          meta={"n_documents": len(docs)}))
    return items


def build(rng) -> list[dict]:
    """The first batch: multi-01 .. multi-10."""
    return _build(CASES, rng, 1)


def build_more(rng) -> list[dict]:
    """The second batch: multi-11 .. multi-20, built exactly like `build`."""
    return _build(MORE_CASES, rng, len(CASES) + 1)
