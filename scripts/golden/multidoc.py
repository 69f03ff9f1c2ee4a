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


def build(rng) -> list[dict]:
    """One item per case; documents shuffled with the seeded rng so the settling document is not always last."""
    items = []
    for i, (question, answer, docs) in enumerate(CASES):
        order = list(range(len(docs)))
        rng.shuffle(order)
        chunks = [chunk(f"d{k + 1}", docs[k][1], docs[k][0]) for k in order]
        gold = [f"d{k + 1}" for k in range(len(docs)) if docs[k][2]]
        items.append(item(f"multi-{i + 1:02d}", "multi_doc", question, [answer], "contains", chunks, gold,
                          meta={"n_documents": len(docs)}))
    return items
